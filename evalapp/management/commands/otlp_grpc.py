from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from evalapp.otlp_grpc import build_server


class Command(BaseCommand):
    help = "Receive OTLP traces over gRPC (TraceService/Export), as POST /v1/traces receives them over HTTP."
    # Django's checks would import the URL configuration (DRF and the rest, ~30 MiB) into a process that serves no
    # page; `manage.py check` and migrate run them (design note 47).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
        parser.add_argument("--port", type=int, default=settings.EVALAPP_OTLP_GRPC_PORT, help="default: EVALAPP_OTLP_GRPC_PORT (4317)")
        parser.add_argument("--workers", type=int, default=8, help="requests handled at once")

    def handle(self, *args, host: str, port: int, workers: int, **options) -> None:
        try:
            server, bound = build_server(f"{host}:{port}", workers=workers)
        except RuntimeError:  # grpc's "failed to bind"
            bound = 0
        if not bound:
            raise CommandError(f"could not listen on {host}:{port} (in use?)")
        server.start()
        self.stdout.write(f"OTLP/gRPC receiver on {host}:{bound}", ending="\n")
        self.stdout.flush()
        try:
            server.wait_for_termination()
        except KeyboardInterrupt:
            server.stop(grace=5)
