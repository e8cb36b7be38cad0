"""The table of the "throttle" cache (accounts.throttle) when there is no Redis: what `manage.py createcachetable`
would make for a DatabaseCache, made by `migrate` instead, so every setup (and every test database) has it whether
or not REDIS_URL is set today."""

from django.db import migrations, models

TABLE = "evalapp_throttle"


def create_table(apps, schema_editor):
    connection = schema_editor.connection
    if TABLE in connection.introspection.table_names():
        return
    quote = schema_editor.quote_name
    columns = (
        models.CharField(name="cache_key", max_length=255, primary_key=True),
        models.TextField(name="value"),
        models.DateTimeField(name="expires"),
    )
    definitions = [
        f"{quote(column.name)} {column.db_type(connection=connection)} NOT NULL{' PRIMARY KEY' if column.primary_key else ''}"
        for column in columns
    ]
    schema_editor.execute(f"CREATE TABLE {quote(TABLE)} ({', '.join(definitions)})")
    schema_editor.execute(f"CREATE INDEX {quote(TABLE + '_expires')} ON {quote(TABLE)} ({quote('expires')})")


def drop_table(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(TABLE)}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_editors_group")]
    operations = [migrations.RunPython(create_table, drop_table)]
