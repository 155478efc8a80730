"""System checks of the settings read from environment variables (`manage.py check`)."""
from __future__ import annotations

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.compatibility)
def check_environment(app_configs=None, **kwargs):
    """config.E001 for every environment variable that did not parse (config.settings fell back to
    its default and recorded it): its name, the value given and the form it needs."""
    return [
        checks.Error(
            f"{name}={value!r} is not valid.",
            hint=f"Set {name} to {expected}, or unset it for the default.",
            id="config.E001",
        )
        for name, value, expected in getattr(settings, "SETTINGS_ERRORS", [])
    ]
