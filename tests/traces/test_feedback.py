"""What a feedback value may be (traces.feedback): how typed text is read, and that feedback under a judge's name
must be a value that judge could give, whoever stores it (the trace page, the conversation page, the API)."""

from __future__ import annotations

import pytest

from judges.actions import create_judge
from tests.conftest import make_trace
from traces.feedback import FeedbackError, ValueKind, ValueRule, add_feedback, read_value

YES_NO = ValueRule("helpful", ValueKind.YES_NO)
WHOLE = ValueRule("score", ValueKind.WHOLE_NUMBER)
NUMBER = ValueRule("confidence", ValueKind.NUMBER)
TONE = ValueRule("tone", ValueKind.TEXT, ("calm", "rude"))
NOTE = ValueRule("summary", ValueKind.TEXT)


@pytest.mark.parametrize(
    ("text", "rule", "value"),
    [
        ("yes", None, True),
        (" Good ", None, True),
        ("fail", None, False),
        ("1", None, True),  # a yes/no word before a number…
        ("1", WHOLE, 1),  # …unless the judge answers with numbers
        ("0", NUMBER, 0),
        ("4", None, 4),
        ("2.5", None, 2.5),
        ("nan", None, "nan"),  # not a number anyone means
        ("inf", NUMBER, None),
        ("resolved", None, "resolved"),
        ("n", YES_NO, False),
        ("3", WHOLE, 3),
        ("0.75", NUMBER, 0.75),
        ("calm", TONE, "calm"),
        ("yes", NOTE, "yes"),  # a text judge gets the text as typed
        ("42", NOTE, "42"),
    ],
)
def test_typed_text_becomes_the_value_to_store(text, rule, value):
    if value is None:
        with pytest.raises(FeedbackError):
            read_value(text, rule)
    else:
        assert read_value(text, rule) == value and type(read_value(text, rule)) is type(value)


@pytest.mark.parametrize(
    ("text", "rule", "message"),
    [
        ("  ", None, "Give a value: yes or no, a number, or a category."),
        ("maybe", YES_NO, "helpful answers yes or no."),
        ("great", WHOLE, "score answers with a number."),
        ("yes", NUMBER, "confidence answers with a number."),
        ("3.5", WHOLE, "score answers with a whole number."),
        ("angry", TONE, "tone answers one of: calm, rude."),
    ],
)
def test_text_that_does_not_fit_says_what_would(text, rule, message):
    with pytest.raises(FeedbackError) as raised:
        read_value(text, rule)
    assert raised.value.errors == {"value": message}


@pytest.fixture
def judged(db, experiment, endpoint, api):
    response = api.post(f"/api/v1/experiments/{experiment.pk}/traces", {"traces": [make_trace("t1", session_id="s1")]}, format="json")
    assert response.status_code == 200
    instructions = "Is {{ outputs }} a good answer to {{ inputs }}?"
    create_judge(experiment, name="helpful", endpoint=endpoint, instructions=instructions, output_type="boolean")
    create_judge(experiment, name="tone", endpoint=endpoint, instructions=instructions, output_type="categorical", categories=["calm", "rude"])
    create_judge(experiment, name="resolved", endpoint=endpoint, scope="session", instructions="Was {{ conversation }} resolved?", output_type="boolean")
    return experiment


def test_stored_feedback_under_a_judges_name_must_be_a_value_that_judge_gives(judged, user):
    trace, session = judged.traces.get(), judged.sessions.get()
    for value, target, message in [
        ("yes", {"trace": trace}, "helpful answers yes or no."),
        ("angry", {"trace": trace}, "tone answers one of: calm, rude."),
        (1, {"session": session}, "resolved answers yes or no."),
    ]:
        name = {"yes": "helpful", "angry": "tone", 1: "resolved"}[value]
        with pytest.raises(FeedbackError) as raised:
            add_feedback(user=user, name=name, value=value, **target)
        assert raised.value.errors == {"value": message}
    assert add_feedback(user=user, name="helpful", value=False, trace=trace).value is False
    assert add_feedback(user=user, name="resolved", value=True, session=session).value is True
    # A judge judges one scope: under a session judge's name, feedback on a trace is the person's own kind of value.
    assert add_feedback(user=user, name="resolved", value="mostly", trace=trace).value == "mostly"
    assert add_feedback(user=user, name="thumbs", value="great", trace=trace).value == "great"
