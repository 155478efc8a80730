"""Create a user with a role, for production installations (where seed_demo refuses to run).

The password is read from the environment variable named by --password-env, or asked for twice
on the terminal; it is never taken as a command-line argument (shell history, process list).
"""
from __future__ import annotations

import getpass
import os

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts import services
from accounts.models import Role, User


class Command(BaseCommand):
    help = "Create a user with a role (labeler, planner, engineer, admin)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password-env", metavar="VAR",
            help="Read the password from this environment variable instead of asking for it.",
        )

    def handle(self, *args, username: str, role: str, email: str, password_env: str | None, **options):
        if User.objects.filter(username=username).exists():
            raise CommandError(f"User {username!r} already exists.")
        if password_env:
            password = os.environ.get(password_env, "")
            if not password:
                raise CommandError(f"Environment variable {password_env} is empty or not set.")
        else:
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("The passwords do not match.")
        user = User(username=username, email=email, role=role)
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        services.create_user(username, password, role, email=email)
        self.stdout.write(self.style.SUCCESS(f"Created {role} {username!r}."))
