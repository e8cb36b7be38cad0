"""Alerts: rules over a judge's verdicts or an experiment's traffic, checked every minute.

    figures.py   what a rule measures over a window (one tally per distinct window, shared by an experiment's rules)
    links.py     where an alert points (the Traces tab, filtered to its window)
    evaluate.py  the state machine: open (with a cause), hold, resolve with hysteresis; one check for all rules
    notify.py    webhook (JSON, Slack-compatible text, HMAC-signed, retried with backoff) and e-mail deliveries

The models (AlertRule, AlertEvent, AlertDelivery) live in evalapp.models; the page in evalapp.ui.alerts; the
schedule in evalapp.tasks."""
