"""traces.chat: what counts as a chat and the text people and judges read in it (the trace page, the conversation
page, a session judge's {{ conversation }} and the Traces table's previews all use it)."""

from __future__ import annotations

import pytest

from traces.chat import chat_messages, choice_messages, content_text, message_text, text_key
from traces.records import preview

PARTS = [{"type": "text", "text": "Where is my order?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
HISTORY = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": PARTS},
]


def test_a_chat_is_a_list_of_messages_a_messages_object_or_a_completions_choices():
    assert chat_messages(HISTORY) == HISTORY
    assert chat_messages({"messages": HISTORY, "temperature": 0}) == HISTORY
    assert chat_messages([{"role": "user", "content": "hi"}, {"text": "not a message"}]) is None
    assert chat_messages([]) is None and chat_messages("hi") is None
    completion = {"choices": [{"message": {"role": "assistant", "content": "On its way."}}]}
    assert choice_messages(completion) == [{"role": "assistant", "content": "On its way."}]
    assert choice_messages({"choices": [{"text": "legacy completion"}]}) is None


def test_content_reads_as_text_with_images_and_audio_named():
    assert content_text(PARTS) == "Where is my order?\n[image_url]"
    assert content_text("plain") == "plain" and content_text(None) == ""
    assert content_text({"city": "Oslo"}) == '{\n  "city": "Oslo"\n}'


@pytest.mark.parametrize(
    ("value", "role", "said"),
    [
        (HISTORY, "user", "Where is my order?\n[image_url]"),  # the newest message of the role, parts as text
        (HISTORY, "assistant", "Hello! How can I help?"),
        ({"messages": HISTORY}, "system", "Be brief."),
        ({"choices": [{"message": {"role": "assistant", "content": "On its way."}}]}, "assistant", "On its way."),
        ([{"role": "assistant", "content": None, "tool_calls": []}], "assistant", None),  # said nothing
        ({"answer": "42", "sources": []}, "assistant", "42"),  # an object's main text
        ({"prompt": "Summarise this"}, "user", "Summarise this"),
        ({"query": ["refunds", "returns"], "top_k": 3}, "user", {"query": ["refunds", "returns"], "top_k": 3}),  # no text: as it is
        ("just text", "user", "just text"),
    ],
)
def test_message_text_is_what_the_role_said(value, role, said):
    assert message_text(value, role=role) == said


def test_an_objects_main_text_is_its_only_key_or_the_first_known_one():
    assert text_key({"reply": "hi"}) == "reply"
    assert text_key({"reply": "hi", "score": 3}) is None
    assert text_key({"meta": "x", "output": "done", "content": "first"}) == "content"


def test_previews_use_the_same_reading_for_the_roles_side_of_the_exchange():
    assert preview({"messages": HISTORY}, role="user") == "Where is my order? [image_url]"
    assert preview({"messages": [*HISTORY, {"role": "assistant", "content": "It ships tomorrow."}]}, role="assistant") == "It ships tomorrow."
