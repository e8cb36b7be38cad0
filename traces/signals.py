from __future__ import annotations

from django.dispatch import Signal

# Sent after an ingest transaction commits. kwargs: experiment_id, trace_pks (every trace written),
# session_pks (every session touched). Judges listen to this; traces knows nothing of judges.
traces_ingested = Signal()

# Sent inside an ingest transaction, after every row is written and before the commit, with the same kwargs.
# A receiver's writes commit (or roll back) with the ingest; it must not swallow database errors.
traces_written = Signal()

# Sent by traces.retention inside the transaction that is about to delete an experiment's traces (and sessions)
# that started before `end`, the oldest at `start` (hour boundaries). kwargs: experiment_id, start, end. The
# Overview's rollups store those hours first, so their history outlives the rows.
traces_expiring = Signal()

# Sent by traces.feedback before storing a person's feedback, to learn what values its name takes. kwargs:
# experiment_id, scope ("trace" | "session"), name. A receiver answers a traces.feedback.ValueRule (a judge of that
# name judges that scope) or None.
feedback_value_rule = Signal()

# Sent by traces.deletion inside the transaction that marks an experiment for deletion. kwargs: experiment_id.
# judges queues the task that deletes it (traces has no broker of its own); the sweep finishes it in any case.
experiment_deleting = Signal()

# Sent inside the transaction that wrote several assessments at once (bulk_create sends no post_save), before the
# commit. kwargs: assessments (the rows written, with their pks). A receiver's writes commit with them.
assessments_written = Signal()
