from __future__ import annotations

import pytest

from judges.outputs import InvalidAnswer, OutputSpec, extract_answer

BOOLEAN = OutputSpec("boolean")
FRUSTRATION = OutputSpec("categorical", ("none", "resolved", "unresolved"))
SCORE = OutputSpec("integer", min_value=1, max_value=5)
RATIO = OutputSpec("float", min_value=0, max_value=1)


def test_boolean_accepts_yes_no_and_json_booleans_only():
    assert BOOLEAN.parse_value("Yes") is True
    assert BOOLEAN.parse_value(False) is False
    with pytest.raises(InvalidAnswer, match='expected "yes" or "no", got "maybe"'):
        BOOLEAN.parse_value("maybe")


def test_categorical_maps_case_but_refuses_other_values():
    assert FRUSTRATION.parse_value("Resolved") == "resolved"
    with pytest.raises(InvalidAnswer, match='expected one of "none", "resolved", "unresolved"'):
        FRUSTRATION.parse_value("partly")


def test_numbers_are_never_coerced():
    assert SCORE.parse_value(4) == 4
    assert SCORE.parse_value("3") == 3
    with pytest.raises(InvalidAnswer, match="expected an integer, got 3.5"):
        SCORE.parse_value(3.5)
    with pytest.raises(InvalidAnswer, match="outside the allowed range from 1 to 5"):
        SCORE.parse_value(7)
    with pytest.raises(InvalidAnswer, match="a number"):
        RATIO.parse_value("high")
    assert RATIO.parse_value(0.25) == 0.25


def test_string_must_not_be_empty():
    assert OutputSpec("string").parse_value("  tone: formal ") == "tone: formal"
    with pytest.raises(InvalidAnswer):
        OutputSpec("string").parse_value("")


def test_answer_type_lines_and_schema():
    assert FRUSTRATION.answer_type_line() == 'Answer type: categorical; allowed values: "none", "resolved", "unresolved"'
    assert SCORE.answer_type_line() == "Answer type: integer from 1 to 5"
    assert RATIO.answer_type_line() == "Answer type: float from 0.0 to 1.0"
    schema = BOOLEAN.json_schema()
    assert schema["required"] == ["rationale", "result"]
    assert schema["properties"]["result"] == {"type": "string", "enum": ["yes", "no"]}


@pytest.mark.parametrize(
    "content",
    [
        '{"rationale": "fine", "result": "yes"}',
        'Here is my verdict:\n```json\n{"rationale": "fine", "result": "yes"}\n```',
        'Sure. {"rationale": "fine", "result": "yes"} Hope that helps.',
        "Rationale: fine\nResult: yes",
    ],
)
def test_answer_is_extracted_from_json_prose_or_lines(content):
    assert extract_answer(content) == ("yes", "fine")


def test_no_answer_in_text_is_an_invalid_answer():
    with pytest.raises(InvalidAnswer, match="no result in the requested format"):
        extract_answer("Hmm, that's an interesting conversation.")
