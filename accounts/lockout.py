"""Lockout after failed sign-ins, for every login (the page form, Django admin's login and the
API's token login): django-axes, configured by the platform's own settings (config/settings.py).

Failures are counted in the database (axes's AccessAttempt rows), so every server process sees
the same count. An account is locked for one client address after LOGIN_FAILURE_LIMIT failures
from that address, and everywhere after LOGIN_ACCOUNT_FAILURE_LIMIT failures from all addresses
together; the lock lifts LOGIN_COOLOFF_MINUTES after the failures that made it (refused tries
while locked are not counted, so the wait the message gives holds), or when an admin resets it.
Successful sign-ins are never limited (a crowd signs in from one office address) and reset the
account's count.

The client address is REMOTE_ADDR unless TRUSTED_PROXY_COUNT proxies are configured: a client
writes whatever it likes into X-Forwarded-For, so only the hops our own proxies appended count.
"""
from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from datetime import datetime, timedelta

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_credentials
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q, Sum
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.utils.translation import ngettext


def _address(value: str | None) -> str | None:
    if not value or "%" in value:  # an IPv6 zone id is no client address (and the column refuses it)
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_address(request) -> str | None:
    """The client's address: REMOTE_ADDR, or with N trusted proxies the N-th X-Forwarded-For
    entry from the right (each proxy appends the address it was connected from; whatever stands
    before our outermost proxy's entry was written by the client)."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        # Fewer hops than proxies: the request did not come through them all, so the header is
        # the client's own.
        if len(hops) >= proxies and (address := _address(hops[-proxies])):
            return address
    return _address(request.META.get("REMOTE_ADDR"))


def username_of(request, credentials: dict | None) -> str | None:
    """The username the counts are kept under, as typed. Cut to the longest username an account
    can have, so that no input is too long (or, with a NUL, unstorable) for the attempts table."""
    if credentials:
        username = credentials.get("username")
    else:
        data = getattr(request, "data", None)  # DRF's parsed body, which may be any JSON
        username = (data if isinstance(data, Mapping) else request.POST).get("username")
    if username is None:
        return None
    longest = get_user_model()._meta.get_field("username").max_length
    return str(username).replace("\x00", "")[:longest]


def failure_limit(request, credentials) -> int:
    return settings.LOGIN_FAILURE_LIMIT


def cool_off(request=None) -> timedelta:
    return timedelta(minutes=settings.LOGIN_COOLOFF_MINUTES)


def _lifts_at(rows: list[tuple[datetime, int]], limit: int, wait: timedelta) -> datetime | None:
    """When a lock over `rows` (attempt time, failures; oldest first) lifts: each row stops
    counting `wait` after its last failure, so the lock lifts when the rows still counting sum
    to less than `limit`. None when they already do."""
    left = sum(n for _, n in rows)
    if left < limit:
        return None
    for at, n in rows:
        left -= n
        if left < limit:
            return at + wait
    return None


class LoginLockoutHandler(AxesDatabaseHandler):
    """axes's database handler with two limits: per (account, address) and per account."""

    def _recent(self, request, credentials):
        since = (request.axes_attempt_time or timezone.now()) - cool_off(request)
        return AccessAttempt.objects.filter(username=get_client_username(request, credentials), attempt_time__gte=since)

    def get_failures(self, request, credentials: dict | None = None) -> int:
        totals = self._recent(request, credentials).aggregate(
            account=Sum("failures_since_start"),
            here=Sum("failures_since_start", filter=Q(ip_address=request.axes_ip_address)),
        )
        here, account = totals["here"] or 0, totals["account"] or 0
        # axes compares this one number with AXES_FAILURE_LIMIT (the per-address limit), so an
        # account locked everywhere reports at least that many.
        if account >= settings.LOGIN_ACCOUNT_FAILURE_LIMIT:
            return max(here, settings.LOGIN_FAILURE_LIMIT)
        return here

    def seconds_locked(self, request, credentials: dict | None = None) -> int:
        """Seconds until this account can sign in again from this client's address."""
        rows = list(self._recent(request, credentials).order_by("attempt_time")
                    .values_list("attempt_time", "ip_address", "failures_since_start"))
        wait = cool_off(request)
        ends = [
            _lifts_at([(at, n) for at, ip, n in rows if ip == request.axes_ip_address], settings.LOGIN_FAILURE_LIMIT, wait),
            _lifts_at([(at, n) for at, _ip, n in rows], settings.LOGIN_ACCOUNT_FAILURE_LIMIT, wait),
        ]
        ends = [end for end in ends if end is not None]
        if not ends:
            return int(wait.total_seconds())
        now = request.axes_attempt_time or timezone.now()
        return max(1, math.ceil((max(ends) - now).total_seconds()))


def retry_after(request, username: str | None) -> int:
    """Seconds until `username` may try again from this request's address (the whole cool-off
    when another handler is configured)."""
    handler = AxesProxyHandler.get_implementation()
    AxesProxyHandler.update_request(request)
    if isinstance(handler, LoginLockoutHandler):
        return handler.seconds_locked(request, get_credentials(username))
    return int(cool_off(request).total_seconds())


def lockout_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return ngettext(
        "Too many wrong passwords for this account. Try again in %(minutes)d minute, or ask an admin to unlock it.",
        "Too many wrong passwords for this account. Try again in %(minutes)d minutes, or ask an admin to unlock it.",
        minutes,
    ) % {"minutes": minutes}


def lockout_response(request, original_response=None, credentials=None) -> HttpResponseBase:
    """AXES_LOCKOUT_CALLABLE, for the page and admin logins: their form already says why (see
    accounts.forms.LockoutMessageMixin), so the page stays and only gets 429 and Retry-After."""
    username = (credentials or {}).get("username") if isinstance(credentials, dict) else None
    seconds = retry_after(request, username)
    if isinstance(original_response, HttpResponseBase):
        response = original_response
    else:
        response = HttpResponse(lockout_message(seconds), content_type="text/plain; charset=utf-8")
    response.status_code = 429
    response["Retry-After"] = str(seconds)
    return response
