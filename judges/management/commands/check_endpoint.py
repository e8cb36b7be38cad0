from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from judges.endpoint_actions import check_connection
from judges.models import ModelEndpoint


class Command(BaseCommand):
    help = "Make one tiny call to a model endpoint and report success or the provider's error in plain words."

    def add_arguments(self, parser):
        parser.add_argument("endpoint", help="endpoint name")

    def handle(self, *args, endpoint: str, **options):
        found = ModelEndpoint.objects.filter(name=endpoint).first()
        if found is None:
            names = ", ".join(ModelEndpoint.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"No model endpoint named {endpoint!r} (endpoints: {names}).")
        ok, message = check_connection(found)
        if not ok:
            raise CommandError(message)
        self.stdout.write(message)
