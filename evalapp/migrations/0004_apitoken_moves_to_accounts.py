"""ApiToken moved to the accounts app. Only Django's picture of the models changes here; the table
(evalapp_apitoken) and its rows stay as they are, and accounts/migrations/0001_initial.py takes the model over."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("evalapp", "0003_overviewhour")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="ApiToken")],
            database_operations=[],
        ),
    ]
