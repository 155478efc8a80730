"""Forms for account pages."""
from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from . import lockout
from .services import MAX_TOKEN_DAYS


class LockoutMessageMixin:
    """A locked account is told so, and for how long, instead of "wrong password" (the right
    password is refused too while it is locked)."""

    def get_invalid_login_error(self):
        if getattr(self.request, "axes_locked_out", False):
            seconds = lockout.retry_after(self.request, self.cleaned_data.get("username"))
            return forms.ValidationError(lockout.lockout_message(seconds), code="locked_out")
        return super().get_invalid_login_error()


class LoginForm(LockoutMessageMixin, AuthenticationForm):
    username = forms.CharField(label=_("Username"), widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}))
    password = forms.CharField(label=_("Password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))
    error_messages = {
        "invalid_login": _("Wrong username or password. Please try again."),
        "inactive": _("This account is inactive."),
    }


class AdminLoginForm(LockoutMessageMixin, AdminAuthenticationForm):
    pass


class TokenForm(forms.Form):
    name = forms.CharField(label=_("Token name"), max_length=100,
                           widget=forms.TextInput(attrs={"placeholder": _("e.g. training server")}))
    expires_in_days = forms.IntegerField(
        label=_("Expires after (days)"), required=False, min_value=1, max_value=MAX_TOKEN_DAYS,
        help_text=_("Leave empty for a token that works until you revoke it."),
        widget=forms.NumberInput(attrs={"placeholder": _("no expiry")}),
    )
