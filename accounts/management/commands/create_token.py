from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.actions import create_api_token


class Command(BaseCommand):
    help = "Create an API token for a user and print it (it is shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="a label to tell tokens apart")
        parser.add_argument(
            "--create-user", action="store_true", help="create the user (no password, no page login) if missing"
        )

    def handle(self, *args, username: str, name: str, create_user: bool, **options):
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            if not create_user:
                raise CommandError(f"No user named {username!r}. Create it first, or pass --create-user.")
            user = User.objects.create_user(username=username)
            user.set_unusable_password()
            user.save(update_fields=["password"])
        _, raw = create_api_token(user, name)
        self.stdout.write(raw)
