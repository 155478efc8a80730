"""API tokens can expire, and show when they were last used.

A device token from POST /api/auth/login/ expires after API_TOKEN_DEVICE_DAYS (a lost phone
keeps it); a token an engineer makes lasts until revoked unless they choose an expiry. An
expired token answers 401 with a message that says so. `last_used_at` is written at most once a
minute per token, so a busy client does not write on every request.
"""
from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.models import ApiToken

from .conftest import PASSWORD


def with_key(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def expire(token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def test_device_tokens_from_sign_in_expire_after_the_configured_days(db, users, settings):
    settings.API_TOKEN_DEVICE_DAYS = 30
    response = APIClient().post("/api/auth/login/", {"username": "labeler1", "password": PASSWORD, "device": "Galaxy"},
                                format="json")
    assert response.status_code == 201, response.content
    token = ApiToken.objects.get(pk=response.json()["token"]["id"])
    assert timedelta(days=29, hours=23) < token.expires_at - timezone.now() <= timedelta(days=30)
    assert response.json()["token"]["expires_at"] is not None

    settings.API_TOKEN_DEVICE_DAYS = 0  # 0: until revoked
    response = APIClient().post("/api/auth/login/", {"username": "labeler1", "password": PASSWORD, "device": "Tab"},
                                format="json")
    assert response.json()["token"]["expires_at"] is None


def test_an_expired_token_is_refused_with_a_clear_401(db, users):
    token, key = services.create_token(users["engineer"], "box", expires_at=timezone.now() + timedelta(days=1))
    assert with_key(key).get("/api/me/").status_code == 200
    expire(token)
    response = with_key(key).get("/api/me/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
    assert response["WWW-Authenticate"] == "Token"
    assert with_key(key).get("/api/images/").status_code == 401


def test_engineer_tokens_last_until_revoked_unless_an_expiry_is_chosen(api, users):
    engineer = api("engineer")
    forever = engineer.post("/api/tokens/", {"name": "cluster"}, format="json")
    assert forever.status_code == 201 and forever.json()["expires_at"] is None

    week = engineer.post("/api/tokens/", {"name": "laptop", "expires_in_days": 7}, format="json").json()
    expires = timezone.datetime.fromisoformat(week["expires_at"])
    assert timedelta(days=6, hours=23) < expires - timezone.now() <= timedelta(days=7)

    when = (timezone.now() + timedelta(days=2)).isoformat()
    dated = engineer.post("/api/tokens/", {"name": "ci", "expires_at": when}, format="json")
    assert dated.status_code == 201 and dated.json()["is_active"]

    for bad, field in (({"expires_at": (timezone.now() - timedelta(hours=1)).isoformat()}, "expires_at"),
                       ({"expires_in_days": 0}, "expires_in_days"),
                       ({"expires_in_days": 10**9}, "expires_in_days"),
                       ({"expires_in_days": 3, "expires_at": when}, "expires_in_days")):
        response = engineer.post("/api/tokens/", {"name": "bad", **bad}, format="json")
        assert response.status_code == 400 and field in response.json(), (bad, response.content)
    assert not ApiToken.objects.filter(name="bad").exists()


def test_the_api_lists_expiry_state_and_last_use(api, users):
    token, key = services.create_token(users["engineer"], "box", expires_at=timezone.now() + timedelta(days=1))
    assert with_key(key).get("/api/me/").status_code == 200
    expire(token)
    listed = api("engineer").get("/api/tokens/").json()["results"][0]
    assert listed["expires_at"] is not None and listed["last_used_at"] is not None
    assert listed["is_active"] is False  # expired


def test_last_use_is_written_at_most_once_a_minute(db, users, django_assert_num_queries):
    token, key = services.create_token(users["engineer"], "box")
    client = with_key(key)
    client.get("/api/me/")
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # the token and its user: no write
        assert client.get("/api/me/").status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    client.get("/api/me/")
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first


def test_the_tokens_page_sets_an_expiry_and_shows_expiry_and_last_use(client, users):
    client.force_login(users["engineer"])
    response = client.post(reverse("tokens"), {"name": "two weeks", "expires_in_days": "14"}, follow=True)
    assert response.status_code == 200
    token = ApiToken.objects.get(name="two weeks")
    assert timedelta(days=13, hours=23) < token.expires_at - timezone.now() <= timedelta(days=14)
    client.post(reverse("tokens"), {"name": "forever", "expires_in_days": ""})
    assert ApiToken.objects.get(name="forever").expires_at is None

    refused = client.post(reverse("tokens"), {"name": "bad", "expires_in_days": "-3"})
    assert refused.status_code == 200 and refused.context["form"].errors["expires_in_days"]

    _, key = services.create_token(users["engineer"], "used one", expires_at=timezone.now() + timedelta(hours=1))
    with_key(key).get("/api/me/")
    used = ApiToken.objects.get(name="used one")
    expire(used)
    html = client.get(reverse("tokens")).content.decode()
    local = timezone.localtime(used.last_used_at).strftime("%Y-%m-%d %H:%M")
    assert local in html  # last use
    assert timezone.localtime(token.expires_at).strftime("%Y-%m-%d %H:%M") in html  # expiry
    row = html[html.index("used one"):].split("</tr>")[0]
    assert "badge-muted" in row and "/revoke/" not in row  # expired: no revoke button
