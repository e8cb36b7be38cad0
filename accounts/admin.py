from __future__ import annotations

from django.contrib import admin

from accounts.forms import AdminLoginForm
from accounts.models import ApiToken

# The admin's login page counts and limits failed logins like the login page (accounts.throttle).
admin.site.login_form = AdminLoginForm


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    # The hash is not useful to anyone and the token itself is never stored.
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    fields = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["user", "prefix", "created_at", "last_used_at"]
    list_select_related = ["user"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False
