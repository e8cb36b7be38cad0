"""ApiToken moved from evalapp to accounts without touching its table: tokens made before the move keep working,
and the permissions granted on them carry over."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from accounts.models import ApiToken, hash_token

BEFORE_THE_MOVE = [("evalapp", "0003_overviewhour"), ("accounts", None)]


def migrate(targets: list[tuple[str, str | None]]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state([target for target in targets if target[1]]).apps


@pytest.mark.django_db(transaction=True)
def test_a_token_made_before_the_move_still_authenticates_and_keeps_its_permissions(django_user_model):
    old = migrate(BEFORE_THE_MOVE)
    try:
        user = old.get_model("auth", "User").objects.create(username="pat", is_staff=True)
        old.get_model("evalapp", "ApiToken").objects.create(user=user, name="old", token_hash=hash_token("ea_before"), prefix="ea_before")
        ContentType, Permission = old.get_model("contenttypes", "ContentType"), old.get_model("auth", "Permission")
        token_type = ContentType.objects.get_or_create(app_label="evalapp", model="apitoken")[0]
        change = Permission.objects.get_or_create(content_type=token_type, codename="change_apitoken", defaults={"name": "Can change api token"})[0]
        user.user_permissions.add(change)
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    assert ApiToken.objects.get().name == "old"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token ea_before")
    assert client.get("/api/v1/experiments").status_code == 200
    assert django_user_model.objects.get(username="pat").has_perm("accounts.change_apitoken")


@pytest.mark.django_db
def test_a_fresh_database_has_the_editors_group(django_user_model):
    from django.contrib.auth.models import Group

    from accounts.roles import EDITORS_GROUP

    assert Group.objects.filter(name=EDITORS_GROUP).exists()
