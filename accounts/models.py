"""Users and their role, and API tokens."""
from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    LABELER = "labeler", _("Labeler")
    PLANNER = "planner", _("Data planner")
    ENGINEER = "engineer", _("ML engineer")
    ADMIN = "admin", _("Admin")


class User(AbstractUser):
    """A person with exactly one role. Superusers count as admins whatever their role says."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.LABELER)

    @property
    def effective_role(self) -> str:
        return Role.ADMIN if self.is_superuser else self.role

    def has_role(self, *roles: str) -> bool:
        """True if the user holds one of `roles`; admins hold every role."""
        if not self.is_active:
            return False
        role = self.effective_role
        return role == Role.ADMIN or role in roles


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """A named API token. Only its SHA-256 is stored; the key is shown once, when created."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="First characters of the key, to tell tokens apart.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Written at most once a minute per token (ApiTokenAuthentication), not on every request.
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired
