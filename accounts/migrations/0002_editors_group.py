"""The "editors" group (accounts.roles.EDITORS_GROUP). Databases made before the roles moved here already have it
(from evalapp/migrations/0002_editors_group.py): get_or_create leaves it, and its members, as they are."""

from django.db import migrations


def create_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.using(schema_editor.connection.alias).get_or_create(name="editors")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_group, migrations.RunPython.noop)]
