"""django-q2's Redis broker, patient with a Redis outage (judges.brokers has the ORM broker and the waiting). Its own
module so that only a Redis set-up imports redis (design note 47)."""

from __future__ import annotations

import redis
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf

from judges.brokers import Outage


class PatientRedis(Redis):
    """The Redis broker, waiting out a Redis outage (redis-py reconnects on the next command by itself)."""

    def __init__(self, list_key: str | None = None):
        super().__init__(list_key)
        self.outage = Outage("Redis (the task broker)")

    @staticmethod
    def get_connection(list_key: str | None = None) -> redis.Redis:
        """Redis with timeouts: an unreachable Redis (a dropped route, not a refused connection) fails in seconds
        instead of holding an ingest request's enqueue, or a worker, forever. blpop waits 1 s, within them."""
        timeouts = {"socket_connect_timeout": 3, "socket_timeout": 10, "health_check_interval": 30}
        if isinstance(Conf.REDIS, dict):
            return redis.Redis(**{**timeouts, **Conf.REDIS})
        return redis.from_url(Conf.REDIS, **timeouts)

    def dequeue(self):
        try:
            tasks = super().dequeue()
        except (redis.ConnectionError, redis.TimeoutError) as error:
            self.outage.failed(error)
            return None
        self.outage.succeeded()
        return tasks
