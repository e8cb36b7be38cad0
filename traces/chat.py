"""Chat-shaped values (OpenAI-style messages) and the text people and judges read in them. Pure Python.

One reading for every place that looks inside a request or a response: the trace page's conversation view, a
conversation page's question and answer per turn, a session judge's `{{ conversation }}` and the Traces table's
previews. A chat is a list of messages, `{"messages": [...]}`, or a chat completion's `{"choices": [{"message":
...}]}`; a message is an object with a string `role` and `content` (or `tool_calls`)."""

from __future__ import annotations

import json
from typing import Any

# Keys whose text is the point of an object (`{"content": "..."}` outputs), in the order they are looked for.
TEXT_KEYS = ("content", "text", "output", "answer", "response", "result", "query", "question", "input", "prompt")


def is_message(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("role"), str) and ("content" in item or "tool_calls" in item)


def as_messages(items: Any) -> list[dict[str, Any]] | None:
    """`items` if it is a non-empty list of messages, else None."""
    if isinstance(items, list) and items and all(is_message(item) for item in items):
        return items
    return None


def chat_messages(value: Any) -> list[dict[str, Any]] | None:
    """The messages of a list of them or of `{"messages": [...]}`, else None."""
    if isinstance(value, dict):
        return as_messages(value.get("messages"))
    return as_messages(value)


def choice_messages(value: Any) -> list[dict[str, Any]] | None:
    """A chat completion's messages, one per choice (the first is the answer), else None."""
    choices = value.get("choices") if isinstance(value, dict) else None
    if not isinstance(choices, list):
        return None
    return as_messages([choice.get("message") if isinstance(choice, dict) else None for choice in choices])


def newest(messages: list[dict[str, Any]], role: str) -> dict[str, Any] | None:
    return next((message for message in reversed(messages) if message["role"] == role), None)


def content_text(content: Any) -> str:
    """A message's content as text: text as it is, OpenAI-style parts joined one per line (a text part as its
    text, an image or audio part as `[image_url]`), nothing as "", anything else as indented JSON."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, dict) and "type" in part:
                parts.append(f"[{part['type']}]")
            else:
                parts.append(_json(part))
        return "\n".join(parts)
    return _json(content)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def text_key(value: dict[str, Any]) -> str | None:
    """The key of an object's main text: its only key if that holds text, else the first of TEXT_KEYS that does."""
    if len(value) == 1:
        key, item = next(iter(value.items()))
        return key if isinstance(item, str) and isinstance(key, str) else None
    return next((key for key in TEXT_KEYS if isinstance(value.get(key), str)), None)


def _said(message: dict[str, Any]) -> Any:
    content = message.get("content")
    return content_text(content) if isinstance(content, list) else content


def message_text(value: Any, *, role: str) -> Any:
    """What `role` said in a chat-shaped value: the newest message of that role (a chat completion's first
    choice), else an object's main text, else the value itself. A message without content gives None."""
    if (messages := chat_messages(value)) is not None and (message := newest(messages, role)) is not None:
        return _said(message)
    if (choices := choice_messages(value)) is not None:
        return _said(choices[0])
    if isinstance(value, dict) and (key := text_key(value)) is not None:
        return value[key]
    return value
