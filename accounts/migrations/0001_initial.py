"""ApiToken, taken over from evalapp with its table and rows (evalapp/migrations/0004_apitoken_moves_to_accounts.py).

The table is evalapp_apitoken, created by evalapp/migrations/0001_initial.py on every database (fresh or not), so
this only tells Django the model now lives here. The content type is renamed with it, so permissions granted on
API tokens and the admin's history of them carry over."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def move_content_type(apps, schema_editor, *, old: str = "evalapp", new: str = "accounts") -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not ContentType.objects.using(db).filter(app_label=new, model="apitoken").exists():
        ContentType.objects.using(db).filter(app_label=old, model="apitoken").update(app_label=new)


def move_content_type_back(apps, schema_editor) -> None:
    move_content_type(apps, schema_editor, old="accounts", new="evalapp")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("evalapp", "0004_apitoken_moves_to_accounts"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ApiToken",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.CharField(max_length=100)),
                        ("token_hash", models.CharField(max_length=64, unique=True)),
                        ("prefix", models.CharField(max_length=12)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("last_used_at", models.DateTimeField(blank=True, null=True)),
                        ("revoked_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="api_tokens",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={"db_table": "evalapp_apitoken", "ordering": ["-created_at"]},
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_type, move_content_type_back),
    ]
