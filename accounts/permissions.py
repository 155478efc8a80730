"""Role checks for API views and HTML pages."""
from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from rest_framework import permissions

from .models import Role

READ_ROLES = (Role.PLANNER, Role.ENGINEER)  # who may read the catalogue
WRITE_ROLES = (Role.PLANNER,)  # who may change it (admins always may)


class HasRole(permissions.BasePermission):
    """Allow users holding any of `read_roles` to read and any of `write_roles` to write."""

    read_roles: tuple[str, ...] = READ_ROLES
    write_roles: tuple[str, ...] = WRITE_ROLES

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        read_roles = getattr(view, "read_roles", self.read_roles)
        write_roles = getattr(view, "write_roles", self.write_roles)
        if request.method in permissions.SAFE_METHODS:
            return user.has_role(*read_roles, *write_roles)
        return user.has_role(*write_roles)


def role_required(*roles: str):
    """Page decorator: log in first, then hold one of `roles` (admins always pass), else 403."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not request.user.has_role(*roles):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapped.required_roles = roles
        return wrapped

    return decorator


class DocsAccess(permissions.BasePermission):
    """The OpenAPI schema: anyone while settings.API_DOCS_PUBLIC, else anyone signed in (any role,
    session or token). The schema maps every endpoint and field of a platform that holds
    unpublished data: useful to custom-client authors, and to an attacker."""

    def has_permission(self, request, view):
        return settings.API_DOCS_PUBLIC or bool(request.user and request.user.is_authenticated)


def docs_page(view):
    """The docs pages (Swagger UI, ReDoc) under the same rule, by the sign-in page."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not (settings.API_DOCS_PUBLIC or request.user.is_authenticated):
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapped
