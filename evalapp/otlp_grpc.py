"""OTLP over gRPC: the collector's TraceService/Export, for exporters and collectors that speak gRPC (port 4317 by
default). The same auth (`authorization: Bearer <token>` metadata), experiment choice (`x-evalapp-experiment-id`
metadata or the resource attribute), limits and all-or-nothing storing as `POST /v1/traces` — both end in
`traces.otlp_receiver.store_export`. gzip-compressed requests are read (gRPC negotiates it by itself).

Here, not in traces: it checks tokens (accounts) and answers for traces, so it composes both."""

from __future__ import annotations

import logging
from concurrent import futures
from typing import Any

import grpc
from django.conf import settings
from django.db import OperationalError, close_old_connections
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from accounts.actions import token_in_use
from traces import otlp
from traces.admission import IngestBusy, bounded_lock_wait, ingest_slot
from traces.database import database_busy, database_unavailable
from traces.otlp_receiver import GRPC_CODES, ExportRefused, store_export
from traces.payload import PayloadError

logger = logging.getLogger(__name__)

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}
RESPONSE = ExportTraceServiceResponse().SerializeToString()


def _token(metadata: dict[str, Any]) -> str | None:
    parts = str(metadata.get("authorization", "")).split()
    if len(parts) == 2 and parts[0].lower() in ("bearer", "token"):
        return parts[1]
    return None


def export(request: bytes, context: grpc.ServicerContext) -> bytes:
    """TraceService/Export on the raw request bytes (decoded once, by traces.otlp, as OTLP/HTTP's are)."""
    close_old_connections()  # a worker thread keeps its database connection between calls, as a web worker does
    try:
        metadata = {key: value for key, value in context.invocation_metadata()}
        try:
            with bounded_lock_wait():  # the token's last-use stamp is a write too
                raw = _token(metadata)
                if raw is None or token_in_use(raw) is None:
                    context.abort(
                        grpc.StatusCode.UNAUTHENTICATED,
                        "Missing, invalid or revoked API token: send the metadata 'authorization: Bearer <token>'.",
                    )
                with ingest_slot():
                    store_export(otlp.decode_protobuf(request), str(metadata.get("x-evalapp-experiment-id", "")))
        except PayloadError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        except ExportRefused as error:
            context.abort(STATUS_CODES[GRPC_CODES.get(error.status, 13)], error.message)
        except IngestBusy as error:
            _abort_retry_later(context, str(error), error.retry_after)
        except OperationalError as error:
            if database_busy(error):
                seconds = settings.EVALAPP_INGEST_RETRY_AFTER_SECONDS
                _abort_retry_later(context, f"The database is busy with other writes; nothing was stored. Try again in {seconds} s.", seconds)
            if database_unavailable(error):
                seconds = settings.EVALAPP_RETRY_AFTER_SECONDS
                _abort_retry_later(context, "The database is unavailable; nothing was stored. Try again later.", seconds)
            raise
        return RESPONSE
    finally:
        close_old_connections()


def _abort_retry_later(context: grpc.ServicerContext, message: str, seconds: int) -> None:
    """UNAVAILABLE with google.rpc.RetryInfo in the trailers: OTLP gRPC exporters retry after its delay (HTTP's
    503 + Retry-After)."""
    retry_info = RetryInfo(retry_delay=Duration(seconds=seconds))
    context.set_trailing_metadata((("google.rpc.retryinfo-bin", retry_info.SerializeToString()),))
    context.abort(grpc.StatusCode.UNAVAILABLE, message)


def build_server(address: str, *, workers: int = 8) -> tuple[grpc.Server, int]:
    """The server, not started, and the port it is bound to (`address` may ask for port 0: any free one)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otlp-grpc"),
        options=[("grpc.max_receive_message_length", settings.EVALAPP_MAX_BODY_BYTES)],
    )
    handler = grpc.unary_unary_rpc_method_handler(export)  # no (de)serializers: bytes in, bytes out
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))
    port = server.add_insecure_port(address)
    return server, port
