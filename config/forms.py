"""Plumbing every app's HTML pages share."""
from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError


def add_service_errors(form: forms.BaseForm, exc: Exception) -> None:
    """Show a service's refusal on a form: a ValidationError's field errors on their fields where
    the form has them, the rest (and message-only errors, and any other refusal's message) at the
    top."""
    if not isinstance(exc, ValidationError):
        form.add_error(None, str(exc))
    elif hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)
