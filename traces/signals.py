from __future__ import annotations

from django.dispatch import Signal

# Sent after an ingest transaction commits. kwargs: experiment_id, trace_pks (every trace written),
# session_pks (every session touched). Judges listen to this; traces knows nothing of judges.
traces_ingested = Signal()

# Sent inside an ingest transaction, after every row is written and before the commit, with the same kwargs.
# A receiver's writes commit (or roll back) with the ingest; it must not swallow database errors.
traces_written = Signal()
