"""Making a rule: one form that checks what a rule needs (a judge of the right output type for the judge kinds,
a threshold in range, a webhook address, e-mail addresses) and converts what a person types — rates in percent —
into what the check compares (fractions). The webhook secret is encrypted at once and never shown back."""

from __future__ import annotations

from django import forms
from django.core.validators import validate_email

from evalapp.alerts.evaluate import RATES, default_hysteresis
from evalapp.models import DROP_KINDS, JUDGE_KINDS, AlertKind, AlertRule
from judges import secrets
from judges.models import Judge, OutputType
from traces.models import Experiment

MAX_RULES = 100  # per experiment
NUMERIC = {OutputType.INTEGER, OutputType.FLOAT}
UNITS = {
    AlertKind.PASS_RATE_BELOW: "%", AlertKind.PASS_RATE_DROP: "points", AlertKind.JUDGE_ERROR_RATE_ABOVE: "%",
    AlertKind.TRACE_ERROR_RATE_ABOVE: "%", AlertKind.JUDGE_COST_ABOVE: "USD a day", AlertKind.LATENCY_P95_ABOVE: "ms",
    AlertKind.MEAN_BELOW: "score", AlertKind.MEAN_DROP: "score",
}


class AlertRuleForm(forms.Form):
    kind = forms.ChoiceField(choices=AlertKind.choices)
    judge = forms.ModelChoiceField(queryset=Judge.objects.none(), required=False, empty_label="— (traffic rules need none)")
    threshold = forms.FloatField(help_text="Rates in percent (a drop in points), cost in USD a day, latency in ms, means in the judge's scale.")
    hysteresis = forms.FloatField(required=False, min_value=0, help_text="How far back past the threshold resolves it (same unit). Default: 2 points for rates, half the drop, else 5%.")
    window_minutes = forms.IntegerField(initial=60, min_value=5, max_value=7 * 24 * 60)
    min_samples = forms.IntegerField(initial=20, min_value=1, max_value=1_000_000)
    significance = forms.FloatField(initial=0.001, min_value=1e-9, max_value=0.5, help_text="Drop rules: the one-sided test's level.")
    webhook_url = forms.URLField(required=False, max_length=500, assume_scheme="https")
    webhook_secret = forms.CharField(required=False, max_length=200, widget=forms.PasswordInput, help_text="Signs each body (HMAC-SHA256); never shown again.")
    email_to = forms.CharField(required=False, max_length=500, help_text="Comma-separated addresses.")

    def __init__(self, *args, experiment: Experiment, **kwargs):
        super().__init__(*args, **kwargs)
        self.experiment = experiment
        self.fields["judge"].queryset = Judge.objects.filter(experiment=experiment).order_by("name")

    def clean_email_to(self) -> str:
        addresses = [address.strip() for address in self.cleaned_data["email_to"].split(",") if address.strip()]
        for address in addresses:
            try:
                validate_email(address)
            except forms.ValidationError:
                raise forms.ValidationError(f"{address!r} is not an e-mail address") from None
        return ", ".join(addresses)

    def clean(self):
        data = super().clean()
        kind, judge, threshold = data.get("kind"), data.get("judge"), data.get("threshold")
        if kind is None or threshold is None:
            return data
        if AlertRule.objects.filter(experiment=self.experiment).count() >= MAX_RULES:
            raise forms.ValidationError(f"An experiment can have at most {MAX_RULES} alert rules; delete one first.")
        if kind in JUDGE_KINDS:
            if judge is None:
                self.add_error("judge", "This kind of rule watches a judge: pick one.")
            elif kind in (AlertKind.PASS_RATE_BELOW, AlertKind.PASS_RATE_DROP) and judge.output_type != OutputType.BOOLEAN:
                self.add_error("judge", f"A pass rate needs a yes/no judge; {judge.name} gives {judge.get_output_type_display().lower()} answers.")
            elif kind in (AlertKind.MEAN_BELOW, AlertKind.MEAN_DROP) and judge.output_type not in NUMERIC:
                self.add_error("judge", f"A mean needs a judge that gives numbers; {judge.name} gives {judge.get_output_type_display().lower()} answers.")
        else:
            data["judge"] = None
        if kind in RATES and kind in DROP_KINDS:
            if not 0 < threshold <= 100:
                self.add_error("threshold", "A drop is in percentage points: above 0, at most 100.")
        elif kind in RATES:
            if not 0 < threshold < 100:
                self.add_error("threshold", "A rate threshold is a percentage between 0 and 100.")
        elif threshold <= 0 and kind != AlertKind.MEAN_BELOW:
            self.add_error("threshold", "Must be above 0.")
        return data

    def save(self, *, created_by: str) -> AlertRule:
        data = self.cleaned_data
        kind = data["kind"]
        scale = 100 if kind in RATES else 1
        threshold = data["threshold"] / scale
        hysteresis = data["hysteresis"] / scale if data.get("hysteresis") is not None else default_hysteresis(kind, threshold)
        return AlertRule.objects.create(
            experiment=self.experiment, judge=data["judge"], kind=kind, threshold=threshold, hysteresis=hysteresis,
            window_minutes=data["window_minutes"], min_samples=data["min_samples"], significance=data["significance"],
            webhook_url=data["webhook_url"], webhook_secret_encrypted=secrets.encrypt(data["webhook_secret"]) if data["webhook_secret"] else "",
            email_to=data["email_to"], created_by=created_by,
        )
