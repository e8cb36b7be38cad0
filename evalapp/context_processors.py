from __future__ import annotations

from accounts.roles import can_edit


def roles(request) -> dict:
    return {"can_edit": can_edit(getattr(request, "user", None))}
