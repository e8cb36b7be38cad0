"""Telling people: a webhook and e-mail per rule, each delivery logged with every attempt.

Webhook: a JSON POST whose `text` is a Slack-compatible message (a Slack incoming webhook posts it as is) and whose
`alert` holds the figures. Signed with the rule's secret: `X-Evalapp-Signature: sha256=<hex>`, the HMAC-SHA256 of
`<X-Evalapp-Timestamp>.<body>`, so a receiver can check both origin and freshness. A failed delivery (no answer
in 10 s, or not 2xx) is retried by the next checks after 1, 2, 4 and 8 minutes, then given up; each attempt's
outcome is kept in the delivery's log, shown on the Alerts page. E-mail goes through Django's mail settings
(EVALAPP_EMAIL_*; the console in the demo). A muted rule's alerts are recorded but not sent."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import F

from evalapp.alerts.links import absolute, traces_link
from evalapp.models import AlertDelivery, AlertEvent
from judges import secrets

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
FIRST_RETRY = timedelta(minutes=1)
TIMEOUT_SECONDS = 10
# A delivery being attempted is hidden from other checks this long (two workers never send the same one twice).
CLAIM = timedelta(seconds=60)


def safe_target(url: str) -> str:
    """A webhook address as the page and the logs show it: scheme and host only (Slack's path is its secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.path not in ("", "/") else f"{parts.scheme}://{parts.netloc}"


def queue(event: AlertEvent, what: str, now: datetime) -> list[AlertDelivery]:
    """Record the deliveries an event's opening or resolution owes (sent by deliver_due, in this check)."""
    rule = event.rule
    if rule.is_muted(now):
        logger.info("alert %s %s while rule %s is muted until %s: not sent", event.pk, what, rule.pk, rule.muted_until)
        return []
    deliveries = []
    if rule.webhook_url:
        deliveries.append(AlertDelivery(event=event, channel="webhook", what=what, target=safe_target(rule.webhook_url), next_attempt_at=now, created_at=now))
    if recipients := rule.recipients():
        deliveries.append(AlertDelivery(event=event, channel="email", what=what, target=", ".join(recipients), next_attempt_at=now, created_at=now))
    return AlertDelivery.objects.bulk_create(deliveries)


def message(event: AlertEvent, what: str) -> dict[str, Any]:
    rule = event.rule
    link = absolute(traces_link(rule, event.window_start, event.window_end))
    page = absolute(f"/experiments/{rule.experiment_id}/alerts")
    headline = f"[{rule.experiment.name}] {'Resolved' if what == 'resolved' else 'Alert'}: {rule}"
    cause = f" ({event.cause})" if event.cause and what == "opened" else ""
    text = f"*{headline}*{cause}\n{event.summary}\n<{link}|The window's traces> · <{page}|Alerts>"
    return {
        "text": text,
        "alert": {
            "id": event.pk,
            "event": what,
            "experiment": rule.experiment.name,
            "rule": {"id": rule.pk, "kind": rule.kind, "judge": rule.judge.name if rule.judge_id else None, "threshold": rule.threshold},
            "cause": event.cause,
            "summary": event.summary,
            "figures": event.resolved_figures if what == "resolved" else event.figures,
            "window": {"start": event.window_start.isoformat(), "end": event.window_end.isoformat()},
            "traces_url": link,
            "alerts_url": page,
        },
    }


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _post(delivery: AlertDelivery) -> None:
    rule = delivery.event.rule
    body = json.dumps(message(delivery.event, delivery.what)).encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": "evalapp-alerts", "X-Evalapp-Timestamp": timestamp, "X-Evalapp-Delivery": str(delivery.pk)}
    if rule.webhook_secret_encrypted:
        headers["X-Evalapp-Signature"] = sign(secrets.decrypt(rule.webhook_secret_encrypted), timestamp, body)
    request = urllib.request.Request(rule.webhook_url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - an editor's own address
        if not 200 <= response.status < 300:
            raise OSError(f"HTTP {response.status}")


def _mail(delivery: AlertDelivery) -> None:
    content = message(delivery.event, delivery.what)
    subject = content["text"].splitlines()[0].strip("*")
    send_mail(subject, content["text"].replace("*", ""), settings.DEFAULT_FROM_EMAIL, delivery.event.rule.recipients())


def _failure(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        return f"unreachable: {error.reason}"
    return f"{type(error).__name__}: {error}"[:300]


def deliver_due(now: datetime) -> tuple[int, int]:
    """Attempt every delivery that is due; returns (delivered, failed this time)."""
    delivered = failed = 0
    due = AlertDelivery.objects.filter(next_attempt_at__lte=now).select_related("event__rule__experiment", "event__rule__judge")
    for delivery in due:
        # Claim it by a conditional update, so a second worker's check skips it.
        if not AlertDelivery.objects.filter(pk=delivery.pk, next_attempt_at=delivery.next_attempt_at).update(next_attempt_at=now + CLAIM):
            continue
        try:
            _post(delivery) if delivery.channel == "webhook" else _mail(delivery)
        except Exception as error:  # any failure is the delivery's outcome, logged and retried
            outcome = _failure(error)
            attempts = delivery.attempts + 1
            retry = now + FIRST_RETRY * 2 ** (attempts - 1) if attempts < MAX_ATTEMPTS else None
            note = outcome if retry else f"{outcome}; gave up after {attempts} attempts"
            AlertDelivery.objects.filter(pk=delivery.pk).update(
                attempts=F("attempts") + 1, next_attempt_at=retry, last_error=note, log=[*delivery.log, {"at": now.isoformat(), "outcome": note}]
            )
            logger.warning("alert delivery %s (%s to %s) failed: %s", delivery.pk, delivery.channel, delivery.target, note)
            failed += 1
        else:
            AlertDelivery.objects.filter(pk=delivery.pk).update(
                attempts=F("attempts") + 1, next_attempt_at=None, delivered_at=now, last_error="", log=[*delivery.log, {"at": now.isoformat(), "outcome": "delivered"}]
            )
            delivered += 1
    return delivered, failed
