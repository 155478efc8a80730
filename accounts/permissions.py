"""Role checks for API views and HTML pages."""
from __future__ import annotations

from functools import wraps

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
