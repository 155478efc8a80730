"""API tokens: create one (the key shows once), use it, revoke it; a token carries its user's role."""
from __future__ import annotations

from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import ApiToken


def with_key(key: str, keyword: str = "Token") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {key}")
    return client


def test_engineer_creates_uses_and_revokes_a_token(api, users):
    engineer = api("engineer")
    created = engineer.post("/api/tokens/", {"name": "training box"}, format="json")
    assert created.status_code == 201
    body = created.json()
    key = body["key"]
    assert body["name"] == "training box" and key.startswith(body["prefix"]) and body["is_active"]

    # The key is never shown again, and only its hash is stored.
    listed = engineer.get("/api/tokens/").json()
    assert [t["name"] for t in listed["results"]] == ["training box"]
    assert key not in str(listed) and key not in str(engineer.get(f"/api/tokens/{body['id']}/").json())
    assert not ApiToken.objects.filter(key_hash=key).exists()

    for keyword in ("Token", "Bearer"):
        me = with_key(key, keyword).get("/api/me/")
        assert me.status_code == 200 and me.json()["username"] == "engineer1"
    assert with_key(key).get("/api/images/").status_code == 200
    assert ApiToken.objects.get(pk=body["id"]).last_used_at is not None

    revoked = engineer.post(f"/api/tokens/{body['id']}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = with_key(key).get("/api/me/")
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]


def test_delete_revokes_and_keeps_the_row(api, users):
    token, key = account_services.create_token(users["planner"], "laptop")
    assert api("planner").delete(f"/api/tokens/{token.pk}/").status_code == 204
    assert with_key(key).get("/api/categories/").status_code == 401
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_a_token_sees_only_what_its_role_allows(users):
    _, engineer_key = account_services.create_token(users["engineer"], "box")
    _, labeler_key = account_services.create_token(users["labeler"], "phone")
    engineer, labeler = with_key(engineer_key), with_key(labeler_key)

    assert engineer.get("/api/categories/").status_code == 200
    assert engineer.post("/api/categories/", {"slug": "toys", "name": "Toys", "quota": 10}, format="json").status_code == 403
    assert engineer.patch("/api/categories/1/", {"quota": 1}, format="json").status_code == 403

    assert labeler.get("/api/me/").json()["role"] == "labeler"
    for url in ("/api/images/", "/api/categories/", "/api/imports/", "/api/quotas/", "/api/tokens/"):
        assert labeler.get(url).status_code == 403, url
    assert labeler.post("/api/tokens/", {"name": "more"}, format="json").status_code == 403


def test_tokens_are_private_to_their_owner(api, users):
    theirs, their_key = account_services.create_token(users["engineer"], "engineer's box")
    planner = api("planner")
    assert planner.get("/api/tokens/").json()["results"] == []
    assert planner.get(f"/api/tokens/{theirs.pk}/").status_code == 404
    assert planner.post(f"/api/tokens/{theirs.pk}/revoke/").status_code == 404
    assert planner.delete(f"/api/tokens/{theirs.pk}/").status_code == 404
    assert with_key(their_key).get("/api/me/").status_code == 200


def test_bad_tokens_are_401(users):
    token, key = account_services.create_token(users["engineer"], "box")
    assert with_key("icp_not-a-real-key").get("/api/me/").status_code == 401
    assert APIClient(HTTP_AUTHORIZATION="Token").get("/api/me/").status_code == 401
    assert APIClient(HTTP_AUTHORIZATION=f"Token {key} extra").get("/api/me/").status_code == 401
    users["engineer"].is_active = False
    users["engineer"].save()
    assert with_key(key).get("/api/me/").status_code == 401


def test_a_token_needs_a_name(api):
    response = api("engineer").post("/api/tokens/", {"name": "  "}, format="json")
    assert response.status_code == 400 and "name" in response.json()
    assert not ApiToken.objects.exists()


def test_a_mobile_client_signs_in_labels_and_signs_out(db, users):
    """Any role, labelers included, gets a device token from its password, and signing out
    revokes that token only."""
    from rest_framework.test import APIClient

    from accounts.models import ApiToken
    from tests.conftest import PASSWORD

    client = APIClient()
    wrong = client.post("/api/auth/login/", {"username": "labeler1", "password": "nope", "device": "phone"}, format="json")
    assert wrong.status_code == 400 and not ApiToken.objects.exists()
    ok = client.post("/api/auth/login/", {"username": "labeler1", "password": PASSWORD, "device": "Galaxy"}, format="json")
    assert ok.status_code == 201, ok.content
    key = ok.json()["key"]
    assert ok.json()["user"]["username"] == "labeler1" and ok.json()["token"]["name"] == "Galaxy"
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/me/").json()["username"] == "labeler1"
    assert client.post("/api/auth/logout/").status_code == 204
    assert client.get("/api/me/").status_code == 401
    assert ApiToken.objects.get().revoked_at is not None

# Sign-ins are no longer throttled per address (issue 9: a crowd signs in from one office);
# wrong passwords lock the account instead: tests/test_login_throttle.py.
