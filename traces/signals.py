from __future__ import annotations

from django.dispatch import Signal

# Sent after an ingest transaction commits. kwargs: experiment_id, trace_pks (every trace written),
# session_pks (every session touched). Judges listen to this; traces knows nothing of judges.
traces_ingested = Signal()
