"""The login forms (the login page's and the admin's) and the login page, with failed attempts counted and refused past their limits
(accounts.throttle)."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm

from accounts import throttle


class ThrottledLoginMixin:
    """Refuses an attempt over the limits before the password is looked at; counts each wrong password."""

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        password = self.cleaned_data.get("password")
        if not username or not password:  # the field errors say what is missing; nothing was tried
            return super().clean()
        refusal = throttle.login_refusal(self.request, username)
        if refusal is not None:
            self.refusal = refusal
            raise forms.ValidationError(refusal.message, code="throttled")
        try:
            cleaned = super().clean()
        except forms.ValidationError as error:
            if self.get_user() is None:  # a wrong password (not, say, an inactive account's right one)
                throttle.login_failed(self.request, username)
            raise error
        throttle.login_succeeded(self.request, username)
        return cleaned


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass


class LoginView(auth_views.LoginView):
    """The login page: a refusal past the limits is the same page with its message, answered 429 with Retry-After
    (for scripts; a person reads the message)."""

    authentication_form = LoginForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        refusal = getattr(form, "refusal", None)
        if refusal is not None:
            response.status_code = 429
            response["Retry-After"] = str(refusal.retry_after)
        return response
