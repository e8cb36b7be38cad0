"""PostgreSQL: compress the large JSON columns of spans and traces with lz4 instead of pglz (from PostgreSQL 14, when
the server was built with lz4). pglz was most of the database's own time on ingest: an exporter's 512-span request
went from ~45 to ~19 ms of server time (docs/design-notes.md, 29). Rows already stored keep pglz (both read back);
no table is rewritten. Nothing on SQLite."""

from __future__ import annotations

from django.db import migrations

COLUMNS = {
    "Span": ("inputs", "outputs", "attributes", "events"),
    "Trace": ("request", "response"),
}


def lz4_available(schema_editor) -> bool:
    connection = schema_editor.connection
    if connection.vendor != "postgresql" or connection.pg_version < 140000:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        row = cursor.fetchone()
    return bool(row and row[0])


def set_compression(method: str):
    def apply(apps, schema_editor) -> None:
        if not lz4_available(schema_editor):
            return
        quote = schema_editor.quote_name
        for model, columns in COLUMNS.items():
            table = apps.get_model("traces", model)._meta.db_table
            changes = ", ".join(f"ALTER COLUMN {quote(column)} SET COMPRESSION {method}" for column in columns)
            schema_editor.execute(f"ALTER TABLE {quote(table)} {changes}")

    return apply


class Migration(migrations.Migration):
    dependencies = [("traces", "0003_retention")]

    operations = [migrations.RunPython(set_compression("lz4"), set_compression("pglz"))]
