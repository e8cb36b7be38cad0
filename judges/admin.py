from __future__ import annotations

from django import forms
from django.contrib import admin

from judges.endpoint_actions import ENDPOINT_FIELDS, clean_endpoint, create_endpoint, update_endpoint
from judges.errors import ConfigError
from judges.models import Evaluation, Judge, JudgeVersion, ModelEndpoint


class ModelEndpointForm(forms.ModelForm):
    # Write-only: never rendered back. Leave empty to keep the stored key.
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only. Leave empty to keep the current key.",
    )

    class Meta:
        model = ModelEndpoint
        fields = list(ENDPOINT_FIELDS)

    def clean(self):
        cleaned = super().clean()
        data = {field: cleaned.get(field) for field in ENDPOINT_FIELDS if field in cleaned}
        try:
            # The same rules as every other way in (limits, reserved inference params, unique name).
            clean_endpoint(data, instance=self.instance if self.instance.pk else None, allow_server_key=True)
        except ConfigError as error:
            for field, message in error.errors.items():
                self.add_error(field if field in self.fields else None, message)
        return cleaned


@admin.register(ModelEndpoint)
class ModelEndpointAdmin(admin.ModelAdmin):
    form = ModelEndpointForm
    list_display = ["name", "model", "api_base", "has_api_key", "max_concurrency", "requests_per_minute", "is_standin"]
    readonly_fields = ["detected_output_mode", "created_at", "updated_at"]

    def save_model(self, request, obj: ModelEndpoint, form, change: bool) -> None:
        # Through the actions, so a new key also lifts an authentication pause and nothing skips validation.
        data = {field: form.cleaned_data.get(field) for field in ENDPOINT_FIELDS if field in form.cleaned_data}
        if form.cleaned_data.get("api_key"):
            data["api_key"] = form.cleaned_data["api_key"]
        if change:
            saved = update_endpoint(ModelEndpoint.objects.get(pk=obj.pk), allow_server_key=True, user=request.user, **data)
        else:
            saved = create_endpoint(allow_server_key=True, user=request.user, **data)
        obj.pk = saved.pk
        obj.refresh_from_db()

    @admin.display(boolean=True, description="API key set")
    def has_api_key(self, obj: ModelEndpoint) -> bool:
        return obj.has_api_key


class JudgeVersionInline(admin.TabularInline):
    model = JudgeVersion
    extra = 0
    can_delete = False
    readonly_fields = ["version", "config", "created_by", "created_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Judge)
class JudgeAdmin(admin.ModelAdmin):
    list_display = ["name", "experiment", "scope", "builtin_key", "output_type", "active", "version", "paused_reason"]
    list_filter = ["scope", "active", "experiment"]
    search_fields = ["name"]
    readonly_fields = ["version", "enabled_at", "paused_at", "created_at", "updated_at"]
    inlines = [JudgeVersionInline]
    list_select_related = ["experiment"]

    def has_change_permission(self, request, obj=None) -> bool:
        # Edits must go through update_judge so every change makes a version.
        return False


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ["id", "judge", "trace", "session", "session_generation", "status", "attempts", "error_code", "created_at"]
    list_filter = ["status", "error_code"]
    raw_id_fields = ["trace", "session", "assessment"]
    list_select_related = ["judge", "trace", "session"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
