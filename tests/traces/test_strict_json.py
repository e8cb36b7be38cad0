from __future__ import annotations

import pytest

from traces import strict_json


def test_ordinary_json_decodes_as_usual_big_integers_included():
    text = '{"a": [1, 2.5, -3e10, "é 😀", null, true], "big": 100000000000000000000000000000}'
    assert strict_json.loads(text) == {"a": [1, 2.5, -3e10, "é 😀", None, True], "big": 10**29}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"x": NaN}', "NaN is not a JSON number"),
        ("[-Infinity]", "-Infinity is not a JSON number"),
        ('{"x": 1e400}', "the number 1e400 is too large for a 64-bit float"),
        ('{"x": [{"y": "ok"}, {"y": "a\\ud800"}]}', "x[1].y holds a lone UTF-16 surrogate"),
        ('{"x": {"k\\u0000": 1}}', "x has a key that holds the NUL character"),
        ('"\\u0000"', "the body holds the NUL character"),
        ("[" * 100_000, "it is nested too deeply"),
    ],
)
def test_what_no_database_stores_is_refused_with_where_and_why(text, message):
    with pytest.raises(ValueError) as refused:
        strict_json.loads(text)
    assert str(refused.value).startswith(message)


def test_a_surrogate_pair_is_one_whole_character_and_allowed():
    assert strict_json.loads('"\\ud83d\\ude00"') == "😀"


def test_for_logged_traces_unstorable_text_is_replaced_not_refused():
    text = '{"k\\u0000": ["a\\u0000b", {"c": "\\ud800"}], "ok": "😀", "n": 1}'
    assert strict_json.loads(text, replace_unstorable_text=True) == {"k\ufffd": ["a\ufffdb", {"c": "\ufffd"}], "ok": "😀", "n": 1}
    assert strict_json.loads('"\\u0000"', replace_unstorable_text=True) == "\ufffd"
    with pytest.raises(ValueError, match="NaN is not a JSON number"):  # the other refusals still hold
        strict_json.loads('{"x": NaN}', replace_unstorable_text=True)
