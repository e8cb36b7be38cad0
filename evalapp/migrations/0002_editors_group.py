"""The "editors" group is created by accounts/migrations/0002_editors_group.py now, with the roles it belongs to.

This migration used to create it; it stays, doing nothing, so the history of databases that applied it is
unchanged and evalapp's later migrations keep their place."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("evalapp", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = []
