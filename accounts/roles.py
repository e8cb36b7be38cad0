"""Two roles: viewers read everything; editors (and staff) also create and change judges and model endpoints.

A user is an editor when they are staff/superuser or in the "editors" group (created by a migration). Membership
is managed in the Django admin: Users → a user → Groups, or Groups → editors. Everyone else who can log in is a
viewer."""

from __future__ import annotations

from functools import wraps
from typing import Any, Callable

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission

EDITORS_GROUP = "editors"


def can_edit(user: Any) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_staff or user.is_superuser:
        return True
    cached = getattr(user, "_evalapp_is_editor", None)
    if cached is None:
        cached = user.groups.filter(name=EDITORS_GROUP).exists()
        user._evalapp_is_editor = cached
    return cached


def editor_required(view: Callable) -> Callable:
    """For page views that change judges or endpoints: viewers get 403 with a message saying why."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not can_edit(request.user):
            raise PermissionDenied("Viewers can read but not change judges or model endpoints; ask an editor or an admin.")
        return view(request, *args, **kwargs)

    return wrapped


class EditorOrReadOnly(BasePermission):
    """API: anyone authenticated may read; only editors may change (judges, endpoints, runs)."""

    message = "Your account is a viewer: it can read but not change judges or model endpoints. Ask an admin to add you to the editors group."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        return request.method in SAFE_METHODS or can_edit(request.user)
