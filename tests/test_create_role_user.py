"""`manage.py create_role_user`: how production installations get their first users."""
import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from accounts.models import User


@pytest.mark.django_db
def test_creates_a_user_with_the_role_and_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("NEW_USER_PASSWORD", "a-long-unusual-passphrase")
    call_command("create_role_user", "mina", role="planner", password_env="NEW_USER_PASSWORD")
    user = User.objects.get(username="mina")
    assert user.role == "planner" and user.check_password("a-long-unusual-passphrase")
    assert not user.is_superuser


@pytest.mark.django_db
@pytest.mark.parametrize("password, message", [("", "empty or not set"), ("password", "too common")])
def test_refuses_a_missing_or_weak_password(monkeypatch, password, message):
    monkeypatch.setenv("NEW_USER_PASSWORD", password)
    with translation.override("en"), pytest.raises(CommandError, match=message):
        call_command("create_role_user", "mina", role="engineer", password_env="NEW_USER_PASSWORD")
    assert not User.objects.filter(username="mina").exists()


@pytest.mark.django_db
def test_refuses_an_existing_username(monkeypatch, users):
    monkeypatch.setenv("NEW_USER_PASSWORD", "a-long-unusual-passphrase")
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_role_user", "planner1", role="admin", password_env="NEW_USER_PASSWORD")
    assert User.objects.get(username="planner1").role == "planner"
