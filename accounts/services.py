"""Everything that changes accounts: users, roles and API tokens."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import ApiToken, Role, User, hash_token

TOKEN_PREFIX = "icp_"


class TokenError(Exception):
    """A token action refused; `field` names the input at fault (name or expires_at)."""

    def __init__(self, message: str, field: str = "name"):
        super().__init__(message)
        self.field = field


def create_user(username: str, password: str, role: str, **fields) -> User:
    """Raises ValidationError for a bad username or field, or a password that fails
    AUTH_PASSWORD_VALIDATORS (the same rules as every form that sets one)."""
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(Role.values)}")
    user = User(username=username, role=role, **fields)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.error_list}) from None
    user.set_password(password)
    if role == Role.ADMIN:
        user.is_staff = True
        user.is_superuser = True
    user.full_clean()
    user.save()
    return user


MAX_TOKEN_DAYS = 3650  # the most days the token form and API accept


def token_expiry(days: int | None) -> datetime | None:
    """When a token made now for `days` days expires; None or 0: never."""
    if not days:
        return None
    return timezone.now() + timedelta(days=min(days, MAX_TOKEN_DAYS))


@transaction.atomic
def create_token(user: User, name: str, *, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """Create a token for `user`, valid until `expires_at` (None: until revoked); returns the row
    and the key, which is never shown again."""
    name = (name or "").strip()
    if not name:
        raise TokenError("A token needs a name.")
    if expires_at is not None and expires_at <= timezone.now():
        raise TokenError(_("The expiry must be in the future."), "expires_at")
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name[:100], prefix=key[:12], key_hash=hash_token(key),
                                    expires_at=expires_at)
    return token, key


def create_device_token(user: User, device: str) -> tuple[ApiToken, str]:
    """The token a custom client gets at sign-in (POST /api/auth/login/): it expires after
    API_TOKEN_DEVICE_DAYS, since a lost phone keeps its token and nobody revokes it by hand."""
    return create_token(user, device, expires_at=token_expiry(settings.API_TOKEN_DEVICE_DAYS))


def revoke_token(user: User, token_id: int) -> ApiToken:
    """Revoke one of `user`'s tokens (admins may revoke anyone's)."""
    qs = ApiToken.objects.all() if user.has_role(Role.ADMIN) else ApiToken.objects.filter(user=user)
    try:
        token = qs.get(pk=token_id)
    except ApiToken.DoesNotExist:
        raise TokenError("No such token.") from None
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def note_token_use(token: ApiToken) -> None:
    """Record when a token was last used, at most once a minute (a write per request would cost
    every API call a database write)."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
