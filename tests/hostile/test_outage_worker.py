"""A real worker (`manage.py qcluster`) losing its PostgreSQL: it says so in a line, waits, and once the database
answers again judges what was queued meanwhile, by itself. The worker reaches the database through a TCP proxy
of the test's own, which the test closes (dropping every connection) and opens again on the same port.
PostgreSQL only: SQLite has no server to lose."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from django.db import connection
from django_q.conf import Conf

from judges.models import Evaluation
from tests.conftest import make_trace
from tests.e2e.test_workers import clusters, ingest_in_batches, judge, wait_for  # noqa: F401 (clusters: a fixture)
from tests.hostile.conftest import free_port
from traces.models import Assessment

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class Proxy:
    """Forwards 127.0.0.1:port to the database; close() drops every connection and stops listening."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self.listener: socket.socket | None = None
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        listener, self.listener = self.listener, None
        if listener:
            listener.close()
        with self.lock:
            for each in self.sockets:
                try:
                    each.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                each.close()
            self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for each in (source, sink):
                try:
                    each.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def proxy(monkeypatch):
    """The database through the proxy, for a worker on the ORM broker (the queue in the database it loses)."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no server to lose")
    monkeypatch.delenv("REDIS_URL", raising=False)  # the worker's environment is this process's
    monkeypatch.setattr(Conf, "BROKER_CLASS", "judges.brokers.PatientORM")  # where this process enqueues
    monkeypatch.setattr(Conf, "ORM", "default")
    settings = connection.settings_dict
    through = Proxy((settings["HOST"] or "127.0.0.1", int(settings["PORT"] or 5432)))
    through.open()
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    through.url = f"postgres://{settings['USER']}{password}@127.0.0.1:{through.port}/{settings['NAME']}?connect_timeout=3"
    yield through
    through.close()


def test_a_worker_waits_out_a_database_outage_and_resumes_by_itself(experiment, endpoint, clusters, proxy):  # noqa: F811
    worker = clusters(proxy.url)
    worker.wait_ready()
    judge(experiment, endpoint)
    ingest_in_batches(experiment, [make_trace(f"before{n}") for n in range(3)])
    wait_for(lambda: Assessment.objects.count() == 3, 60, [worker], "the first verdicts")

    proxy.close()
    # With the ORM broker the next poll notices; with Redis, the worker touches the database only for its schedule
    # (checked every ~30 s) and for work, so on a loaded machine this can take a minute.
    wait_for(lambda: "database unavailable" in worker.output(), 120, [worker], "the worker to notice")
    ingest_in_batches(experiment, [make_trace(f"during{n}") for n in range(3)])  # queued in the database, unseen
    time.sleep(12)  # long enough for stock django-q2 to log a traceback and respawn its pusher
    assert Assessment.objects.count() == 3

    proxy.open()
    wait_for(lambda: Assessment.objects.count() == 6 and not Evaluation.objects.exclude(status="done").exists(), 90, [worker], "the rest")
    log = worker.output()
    assert "database is back" in log
    assert "Traceback" not in log and "reincarnated" not in log, log
    assert log.count("database unavailable") == 1  # one line for a short outage, not one per poll
