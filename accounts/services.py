"""Everything that changes accounts: users, roles and API tokens."""
from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from .models import ApiToken, Role, User, hash_token

TOKEN_PREFIX = "icp_"


class TokenError(Exception):
    pass


def create_user(username: str, password: str, role: str, **fields) -> User:
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(Role.values)}")
    user = User(username=username, role=role, **fields)
    user.set_password(password)
    if role == Role.ADMIN:
        user.is_staff = True
        user.is_superuser = True
    user.full_clean()
    user.save()
    return user


@transaction.atomic
def create_token(user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns the row and the key, which is never shown again."""
    name = (name or "").strip()
    if not name:
        raise TokenError("A token needs a name.")
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name[:100], prefix=key[:12], key_hash=hash_token(key))
    return token, key


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
