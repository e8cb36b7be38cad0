"""What OTLP/HTTP (`POST /v1/traces`) and OTLP/gRPC (`manage.py otlp_grpc`) do with a decoded export request: pick
the experiment, check the limits, store it all or nothing through `ingest_traces`. One place, so the two receivers
cannot drift apart; each turns an `ExportRefused` into its own protocol's error (an HTTP status, a gRPC code)."""

from __future__ import annotations

from django.conf import settings

from traces import deletion, otlp
from traces.actions import ingest_traces
from traces.models import Experiment
from traces.payload import PayloadError, whole_number

# How each refusal reads in gRPC: the codes OTLP/HTTP's protobuf error bodies carry too.
# 503 (overload, traces.admission) is UNAVAILABLE, which OTLP exporters retry.
GRPC_CODES = {400: 3, 401: 16, 404: 5, 410: 5, 411: 3, 413: 8, 415: 3, 503: 14}  # INVALID_ARGUMENT, UNAUTHENTICATED, NOT_FOUND, RESOURCE_EXHAUSTED


class ExportRefused(Exception):
    """Nothing was stored; `status` is the HTTP status that says why (GRPC_CODES maps it for gRPC)."""

    def __init__(self, status: int, message: str, errors: list | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


def experiment_for(batch: otlp.OtlpBatch, header: str) -> Experiment:
    """The experiment an export names: the x-evalapp-experiment-id header (an id or a name), else the resource
    attribute evalapp.experiment.id, which must name one experiment."""
    header = header.strip()
    if "\x00" in header:
        raise ExportRefused(400, "The x-evalapp-experiment-id header holds a NUL character; give an experiment id or name.")
    if header:
        named = header
    elif len(batch.experiment_ids) == 1:
        named = next(iter(batch.experiment_ids))
    elif len(batch.experiment_ids) > 1:
        raise ExportRefused(
            400, f"The request names several experiments ({', '.join(sorted(batch.experiment_ids))}); send one per request."
        )
    else:
        raise ExportRefused(
            400,
            "No experiment given: set the x-evalapp-experiment-id header (an experiment id or name) "
            f"or the resource attribute {otlp.EXPERIMENT_ATTRIBUTE}.",
        )
    pk = whole_number(named)
    experiment = Experiment.objects.filter(pk=pk).first() if pk is not None else Experiment.objects.filter(name=named).first()
    if experiment is None:
        if (deleting := deletion.being_deleted(**({"pk": pk} if pk is not None else {"name": named}))) is not None:
            raise ExportRefused(410, f"Experiment {deleting.name!r} is being deleted; it takes no more traces.")
        raise ExportRefused(404, f"Experiment {named!r} does not exist; create it first (POST /api/v1/experiments).")
    return experiment


def store_export(batch: otlp.OtlpBatch, header: str) -> None:
    experiment = experiment_for(batch, header)
    if not batch.traces:
        return
    if len(batch.traces) > settings.EVALAPP_MAX_TRACES_PER_REQUEST:
        raise ExportRefused(400, f"The request holds {len(batch.traces)} traces; the limit is {settings.EVALAPP_MAX_TRACES_PER_REQUEST}.")
    try:
        ingest_traces(experiment, batch.traces)
    except PayloadError as error:
        payload = error.as_json()
        raise ExportRefused(400, payload["detail"], payload["errors"]) from None
