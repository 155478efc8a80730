"""Bearer/Token authentication against hashed, named, revocable ApiTokens.

DRF's own authtoken keeps one plain-text key per user; engineers want several named keys
(one per training box) that can be revoked one at a time, so this small class replaces it.
"""
from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions

from . import services
from .models import ApiToken, hash_token


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("token", "bearer")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        # Compared as bytes: the header is Latin-1 and need not decode as UTF-8 (that was a 500).
        if not header or header[0].lower() not in {k.encode() for k in self.keywords}:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: give 'Token <key>'.")
        try:
            key = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token header.") from None
        try:
            token = ApiToken.objects.select_related("user").get(key_hash=hash_token(key))
        except ApiToken.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This token has been revoked.")
        if token.is_expired:
            raise exceptions.AuthenticationFailed(
                _("This token expired at %(when)s: sign in again or create a new token.")
                % {"when": token.expires_at.isoformat(timespec="seconds")}
            )
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        services.note_token_use(token)
        return token.user, token

    def authenticate_header(self, request):
        return "Token"
