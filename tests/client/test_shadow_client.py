"""The client's shadow verbs against a live server: start_shadow, shadow, shadow_diff, promote_shadow, discard_shadow."""

from __future__ import annotations

import pytest

from evalapp_client import BadRequestError, NotFoundError, PermissionDeniedError
from tests.conftest import make_trace

pytestmark = pytest.mark.django_db(transaction=True)

TONE = "Is the tone of {{ outputs }} polite?"


def test_start_diff_and_promote_a_shadow(client, exp, endpoint, sync_tasks):
    judge = client.register_judge(exp, name="helpful", instructions="Is {{ outputs }} a helpful answer?", model=endpoint.name)
    judge.start()
    started = judge.start_shadow(instructions=TONE)
    assert (started["version"], started["status"]) == (2, "shadow")
    client.log_traces(exp, [make_trace("t1"), make_trace("t2", minutes=1)])
    assert judge.shadow()["judged"] == 2
    diff = judge.shadow_diff()
    assert diff["compared"] == 2 and diff["disagreements"] == len(diff["results"])
    assert client.why_not_judged("t1")["helpful"].state == "judged"  # the live verdict, not the shadow's
    judge.promote_shadow()
    assert judge.version == 3 and judge.instructions == TONE
    with pytest.raises(NotFoundError):
        judge.shadow()


def test_discard_and_errors(client, viewer_client, exp, endpoint):
    judge = client.register_judge(exp, name="helpful", instructions="Is {{ outputs }} a helpful answer?", model=endpoint.name)
    with pytest.raises(BadRequestError, match="live version"):
        judge.start_shadow(instructions="Is {{ outputs }} a helpful answer?")
    as_viewer = viewer_client.get_judge(exp, "helpful")
    with pytest.raises(PermissionDeniedError):
        as_viewer.start_shadow(instructions=TONE)
    judge.start_shadow(instructions=TONE)
    with pytest.raises(PermissionDeniedError):
        as_viewer.discard_shadow()
    assert judge.discard_shadow()["status"] == "discarded"
