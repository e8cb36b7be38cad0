"""What judges announces to the apps above it (they connect; judges imports none of them)."""

from __future__ import annotations

from django.dispatch import Signal

# A job of manual evaluations (judges.manual) has nothing left pending or running. Sent by the worker that settled
# its last evaluation, after that commit, with `job` (the UUID); may be sent more than once for one job (two
# workers finishing at once), so receivers must be idempotent. Evaluation runs (evaluations.receivers) use it to
# mark themselves done without waiting for the every-minute sweep.
job_settled = Signal()
