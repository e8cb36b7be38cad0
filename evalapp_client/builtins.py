"""The server's built-in judges, by catalog key, with the scope each judges.

A copy of what the client needs from `judges/catalog.py` (which it can't import: no Django here); a test keeps the
two the same. The server stays the judge of what is valid: a name missing here is sent as given, and refused
there with a 400 naming `builtin_key`."""

from __future__ import annotations

import re

BUILTIN_SCOPES: dict[str, str] = {
    "RelevanceToQuery": "trace",
    "Safety": "trace",
    "Guidelines": "trace",
    "RetrievalGroundedness": "trace",
    "RetrievalRelevance": "trace",
    "ToolCallCorrectness": "trace",
    "ToolCallEfficiency": "trace",
    "Completeness": "trace",
    "Fluency": "trace",
    "Summarization": "trace",
    "PIILeakage": "trace",
    "Correctness": "trace",
    "ConversationCompleteness": "session",
    "ConversationalGuidelines": "session",
    "ConversationalRoleAdherence": "session",
    "ConversationalSafety": "session",
    "ConversationalToolCallEfficiency": "session",
    "KnowledgeRetention": "session",
    "UserFrustration": "session",
}


def _squash(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


_BY_SQUASHED = {_squash(key): key for key in BUILTIN_SCOPES}


def resolve_builtin(name: str) -> str:
    """The catalog key for `name`, written MLflow-style (`UserFrustration`) or snake_case (`user_frustration`,
    `pii_leakage`); an unknown name comes back unchanged for the server to refuse."""
    if name in BUILTIN_SCOPES:
        return name
    return _BY_SQUASHED.get(_squash(name), name)


def default_judge_name(key: str) -> str:
    """`UserFrustration` → `user_frustration`, `PIILeakage` → `pii_leakage` (as the server's catalog names them)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", key).lower()
