from django.apps import AppConfig


class PlatformConfig(AppConfig):
    """The project's own plumbing as an app, so its system checks are registered (config/checks.py)."""

    name = "config"
    label = "platform_config"
    verbose_name = "Platform configuration"

    def ready(self):
        from . import checks  # noqa: F401  (registers the checks)
