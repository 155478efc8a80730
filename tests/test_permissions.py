"""The API permission matrix: every route under /api/ x every role x a safe and a write method.

The routes come from the URL resolver, so an endpoint added without a row here fails
`test_every_api_route_has_a_matrix_row`. The expected status of each cell is written out below.
"""
from __future__ import annotations

import hashlib
import uuid

import pytest
from django.urls import URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from accounts import services as account_services

ROLES = ("anonymous", "labeler", "planner", "engineer", "admin")



def row(*codes: int) -> dict[str, int]:
    assert len(codes) == len(ROLES)
    return dict(zip(ROLES, codes))


# Catalogue and ingest: planners and engineers read, planners (and admins) write, labelers 403.
READ = row(401, 403, 200, 200, 200)
CREATE_EMPTY = row(401, 403, 400, 403, 400)  # POST {}: past the role check, then a validation error
PATCH_EMPTY = row(401, 403, 200, 403, 200)  # PATCH {}: past the role check, nothing changes
WRITE_NOT_ALLOWED = row(401, 403, 405, 403, 405)  # read-only route: role check first, then 405
PUBLIC_DOCS = row(200, 200, 200, 200, 200)
PUBLIC_DOCS_WRITE = row(405, 405, 405, 405, 405)
ANY_USER = row(401, 200, 200, 200, 200)
ANY_USER_WRITE = row(401, 405, 405, 405, 405)

# route name -> (url kwargs, (safe method, expected), (write method, expected))
EXPECTED = {
    "schema": ("none", ("get", PUBLIC_DOCS), ("post", PUBLIC_DOCS_WRITE)),
    "api-docs": ("none", ("get", PUBLIC_DOCS), ("post", PUBLIC_DOCS_WRITE)),
    "api-redoc": ("none", ("get", PUBLIC_DOCS), ("post", PUBLIC_DOCS_WRITE)),
    "api:api-root": ("none", ("get", ANY_USER), ("post", ANY_USER_WRITE)),
    "api:me": ("none", ("get", ANY_USER), ("post", ANY_USER_WRITE)),
    "api:quotas": ("none", ("get", READ), ("post", WRITE_NOT_ALLOWED)),
    "api:category-list": ("none", ("get", READ), ("post", CREATE_EMPTY)),
    "api:category-detail": ("category", ("get", READ), ("patch", PATCH_EMPTY)),
    "api:subcategory-list": ("none", ("get", READ), ("post", CREATE_EMPTY)),
    "api:subcategory-detail": ("subcategory", ("get", READ), ("patch", PATCH_EMPTY)),
    "api:licence-list": ("none", ("get", READ), ("post", CREATE_EMPTY)),
    "api:licence-detail": ("licence", ("get", READ), ("patch", PATCH_EMPTY)),
    "api:source-list": ("none", ("get", READ), ("post", CREATE_EMPTY)),
    "api:source-detail": ("source", ("get", READ), ("patch", PATCH_EMPTY)),
    "api:image-list": ("none", ("get", READ), ("post", WRITE_NOT_ALLOWED)),
    "api:image-detail": ("image", ("get", READ), ("patch", PATCH_EMPTY)),
    "api:import-list": ("none", ("get", READ), ("post", CREATE_EMPTY)),
    "api:import-detail": ("import", ("get", READ), ("patch", WRITE_NOT_ALLOWED)),
    "api:import-items": ("import_items", ("get", READ), ("post", WRITE_NOT_ALLOWED)),
    # Tokens: planners and engineers manage their own; labelers 403.
    "api:token-list": ("none", ("get", row(401, 403, 200, 200, 200)), ("post", row(401, 403, 400, 400, 400))),
    "api:token-detail": ("own_token", ("get", row(401, 403, 200, 200, 200)), ("delete", row(401, 403, 204, 204, 204))),
    "api:token-revoke": ("own_token", ("get", row(401, 403, 405, 405, 405)), ("post", row(401, 403, 200, 200, 200))),
}


def api_routes() -> dict[str, str]:
    """{name (with namespace): route} for every URL pattern under /api/ in the resolver."""
    found: dict[str, str] = {}

    def walk(patterns, prefix: str, namespaces: list[str]):
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route, namespaces + [p.namespace] if p.namespace else namespaces)
            elif route.lstrip("^").startswith("api/"):
                found[":".join(namespaces + [p.name]) if p.name else route] = route

    walk(get_resolver().url_patterns, "", [])
    return found


def fake_image(source, **fields):
    from datasets.models import Image

    digest = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    values = dict(
        file=f"images/{digest[:2]}/{digest}.jpg", thumbnail=f"thumbs/{digest[:2]}/{digest}.jpg",
        sha256=digest, pixel_sha256=hashlib.sha256(digest.encode()).hexdigest(), phash=1,
        width=640, height=480, original_width=640, original_height=480, original_format="JPEG",
        original_bytes=1000, original_name="secret-photo.jpg", source=source, licence=source.default_licence,
    )
    values.update(fields)
    return Image.objects.create(**values)


@pytest.fixture
def world(users, source):
    from datasets.models import Category, ImportJob

    category = Category.objects.get(slug="food")
    image = fake_image(source, category=category)
    job = ImportJob.objects.create(source=source, kind="upload", status="done")
    tokens = {role: account_services.create_token(users[role], "matrix")[0] for role in ("planner", "engineer", "admin")}
    return {"category": category, "image": image, "job": job, "tokens": tokens, "source": source}


def url_kwargs(kind: str, world: dict, role: str) -> dict:
    if kind == "none":
        return {}
    if kind == "category":
        return {"pk": world["category"].pk}
    if kind == "subcategory":
        return {"pk": world["category"].subcategories.first().pk}
    if kind == "licence":
        return {"code": world["source"].default_licence.code}
    if kind == "source":
        return {"pk": world["source"].pk}
    if kind == "image":
        return {"pk": world["image"].pk}
    if kind == "import":
        return {"pk": world["job"].pk}
    if kind == "import_items":
        return {"job_pk": world["job"].pk}
    if kind == "own_token":
        return {"pk": world["tokens"].get(role, world["tokens"]["planner"]).pk}
    raise AssertionError(kind)


def client_for(role: str, users) -> APIClient:
    client = APIClient()
    if role != "anonymous":
        client.force_authenticate(users[role])
    return client


def test_every_api_route_has_a_matrix_row(db):
    routes = api_routes()
    missing = sorted(set(routes) - set(EXPECTED))
    stale = sorted(set(EXPECTED) - set(routes))
    assert not missing, f"API routes without a permission-matrix row: {missing}"
    assert not stale, f"matrix rows for routes that no longer exist: {stale}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_permission_matrix(name, users, world):
    kind, (safe, safe_expected), (write, write_expected) = EXPECTED[name]
    got, want = {}, {}
    for role in ROLES:
        url = reverse(name, kwargs=url_kwargs(kind, world, role))
        client = client_for(role, users)
        got[(role, safe)] = getattr(client, safe)(url).status_code
        want[(role, safe)] = safe_expected[role]
        got[(role, write)] = getattr(client, write)(url, {}, format="json").status_code
        want[(role, write)] = write_expected[role]
    assert got == want


def test_anonymous_is_asked_for_a_token(db):
    response = APIClient().get("/api/images/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_images_never_reach_a_labeler(users, world):
    """Not by session, not by token, not through filters, search or an import's report."""
    image = world["image"]
    session = APIClient()
    session.force_login(users["labeler"])
    _, key = account_services.create_token(users["labeler"], "phone")
    by_token = APIClient()
    by_token.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    urls = [
        "/api/images/",
        f"/api/images/{image.pk}/",
        "/api/images/?category=food",
        "/api/images/?search=secret",
        f"/api/images/?sha256={image.sha256}",
        f"/api/imports/{world['job'].pk}/items/",
        "/api/quotas/",
    ]
    for client in (session, by_token):
        assert client.get("/api/me/").json()["role"] == "labeler"
        for url in urls:
            response = client.get(url)
            assert response.status_code == 403, url
            body = response.content.decode()
            assert str(image.pk) not in body and "secret-photo" not in body and image.sha256 not in body, url
        assert client.patch(f"/api/images/{image.pk}/", {"category": "people"}, format="json").status_code == 403
    image.refresh_from_db()
    assert image.category.slug == "food"
