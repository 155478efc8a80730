"""Stored photos (local disk, no S3) reach only the people allowed to see them.

Planners, engineers and admins see the whole catalogue; a labeler sees the photos of projects
where they are an active member and the examples of those projects' published guideline. Every
one else gets a login redirect (no session), 401 (a bad token) or 404 (signed in, not allowed:
the answer does not say whether the photo exists). In production the web server sends the bytes
(X-Accel-Redirect / X-Sendfile) after the check.
"""
from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts import services as account_services
from datasets import services as dataset_services
from datasets.models import Source
from labeling import services

from .conftest import make_photo
from .test_settings import settings_for

ROLES = ("anonymous", "labeler", "other_labeler", "removed_labeler", "planner", "engineer", "admin")


def row(*codes: int) -> dict[str, int]:
    assert len(codes) == len(ROLES)
    return dict(zip(ROLES, codes))


# Who gets what, per kind of photo.
IN_PROJECT = row(302, 200, 404, 404, 200, 200, 200)
EXAMPLE = row(302, 200, 404, 404, 200, 200, 200)
CATALOGUE_ONLY = row(302, 404, 404, 404, 200, 200, 200)  # in no project


@pytest.fixture
def world(db, users, licence):
    """Project A (labeler1 active, `gone` removed) over photo `a`, with photo `ex` as a published
    example; project B (`other` active) over photo `b`; photo `lone` in no project."""
    def src(name):
        return Source.objects.create(kind="upload", name=name, default_licence=licence)

    sa, sb, sx, sl = src("A"), src("B"), src("examples"), src("lone")
    a = dataset_services.ingest_one(make_photo(seed=1), source=sa).image
    b = dataset_services.ingest_one(make_photo(seed=2), source=sb).image
    ex = dataset_services.ingest_one(make_photo(seed=3), source=sx).image
    lone = dataset_services.ingest_one(make_photo(seed=4), source=sl).image
    other = account_services.create_user("other", "pw-long-enough-1", "labeler")
    gone = account_services.create_user("gone", "pw-long-enough-1", "labeler")

    project_a = services.create_project("A", sources=[sa])
    project_b = services.create_project("B", sources=[sb])
    for project in (project_a, project_b):
        services.sync_project_images(project)
    services.add_member(project_a, users["labeler"])
    services.add_member(project_a, gone)
    services.add_member(project_b, other)
    services.save_example(project_a, ex, comments=[{"comment_type": "reaction", "text": "와 예쁘다", "verdict": "good"}])
    services.publish_guideline(project_a, "Write what you see.")
    services.deactivate_member(project_a, gone)

    people = {"labeler": users["labeler"], "other_labeler": other, "removed_labeler": gone,
              "planner": users["planner"], "engineer": users["engineer"], "admin": users["admin"]}
    return {"photos": {"a": a, "b": b, "ex": ex, "lone": lone}, "people": people,
            "project_a": project_a}


def client_for(world, role: str) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(world["people"][role])
    return client


def url(field) -> str:
    return field.url


@pytest.mark.parametrize("photo, expected", [("a", IN_PROJECT), ("ex", EXAMPLE), ("lone", CATALOGUE_ONLY)])
@pytest.mark.parametrize("kind", ["file", "thumbnail"])
@pytest.mark.parametrize("role", ROLES)
def test_media_permission_matrix(world, role, photo, kind, expected):
    field = getattr(world["photos"][photo], kind)
    response = client_for(world, role).get(url(field))
    assert response.status_code == expected[role], (role, photo, kind)
    if response.status_code == 200:
        assert b"".join(response.streaming_content)[:3] == b"\xff\xd8\xff"  # the JPEG itself
        assert response["Content-Type"] == "image/jpeg"
        assert "private" in response["Cache-Control"]  # never kept by a shared cache
    elif response.status_code == 302:
        assert response["Location"].startswith("/accounts/login/")
    if response.status_code != 200:  # refused for who asks, not for a missing file
        assert client_for(world, "planner").get(url(field)).status_code == 200


def test_a_labeler_removed_from_the_project_loses_links_that_worked(world):
    labeler = world["people"]["labeler"]
    client = client_for(world, "labeler")
    link = url(world["photos"]["a"].file)
    assert client.get(link).status_code == 200
    services.deactivate_member(world["project_a"], labeler)
    assert client.get(link).status_code == 404
    assert client_for(world, "planner").get(link).status_code == 200
    assert client.get(url(world["photos"]["ex"].thumbnail)).status_code == 404


def test_tokens_work_for_custom_clients_and_bad_tokens_are_401(world):
    token, key = account_services.create_token(world["people"]["labeler"], "phone")
    app = APIClient()
    app.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert app.get(url(world["photos"]["a"].thumbnail)).status_code == 200
    assert app.get(url(world["photos"]["b"].thumbnail)).status_code == 404
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token icp_not-a-key")
    assert bad.get(url(world["photos"]["a"].thumbnail)).status_code == 401
    token.expires_at = token.created_at
    token.save(update_fields=["expires_at"])
    refused = app.get(url(world["photos"]["a"].thumbnail), HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code == 401 and b"expired" in refused.content


def test_nothing_but_catalogue_photos_is_served(world, settings, tmp_path):
    """Staged uploads and manifests, and anything outside the media folder, never leave."""
    from pathlib import Path

    staged = Path(settings.MEDIA_ROOT) / "staging" / "job1" / "00000_upload.jpg"
    staged.parent.mkdir(parents=True)
    staged.write_bytes(make_photo(seed=9))
    planner = client_for(world, "planner")
    a = world["photos"]["a"]
    for path in ("staging/job1/00000_upload.jpg", "../db.sqlite3", "images/../staging/job1/00000_upload.jpg",
                 a.file.name.replace(".jpg", ".JPG"), a.file.name + "/x", "images/00/00/" + str(a.id) + ".jpg"):
        assert planner.get("/media/" + path).status_code == 404, path
    assert planner.post(url(a.file)).status_code == 405


def test_production_hands_the_bytes_to_the_web_server(world, settings):
    a = world["photos"]["a"]
    settings.MEDIA_ACCEL_REDIRECT_PREFIX = "/protected-media/"
    response = client_for(world, "planner").get(url(a.file))
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/protected-media/{a.file.name}"
    assert response.content == b""  # nginx sends the file from its `internal` location
    assert "X-Accel-Redirect" not in client_for(world, "other_labeler").get(url(a.file))

    settings.MEDIA_ACCEL_REDIRECT_PREFIX = ""
    settings.MEDIA_SENDFILE_HEADER = "X-Sendfile"
    response = client_for(world, "labeler").get(url(a.thumbnail))
    assert response.status_code == 200 and response.content == b""
    assert response["X-Sendfile"] == a.thumbnail.path


def test_the_check_costs_no_query_for_staff_and_one_for_a_labeler(world, django_assert_num_queries):
    """Session and user: 2 queries every signed-in request makes; the check adds none for a
    planner and one EXISTS for a labeler."""
    link = url(world["photos"]["a"].thumbnail)
    planner, labeler = client_for(world, "planner"), client_for(world, "labeler")
    with django_assert_num_queries(2):
        assert planner.get(link).status_code == 200
    with django_assert_num_queries(3):
        assert labeler.get(link).status_code == 200


def test_pages_and_the_api_link_photos_through_the_check(world):
    """The grid, the labeling API and the guideline print URLs that the check then serves."""
    planner, labeler = client_for(world, "planner"), client_for(world, "labeler")
    grid = planner.get("/datasets/images/").content.decode()
    thumbs = [p.thumbnail.url for p in world["photos"].values()]
    assert all(t in grid for t in thumbs)
    assert all(planner.get(t).status_code == 200 for t in thumbs)

    project = world["project_a"]
    body = labeler.post(f"/api/projects/{project.pk}/next/", {"count": 1}, content_type="application/json").json()
    photo = body["assignments"][0]["image"]
    for link in (photo["url"], photo["thumbnail_url"]):
        assert link.startswith("http://testserver/media/")
        assert labeler.get(link).status_code == 200
        assert client_for(world, "other_labeler").get(link).status_code == 404
    guide = labeler.get(f"/api/projects/{project.pk}/guideline/").json()
    example = guide["examples"][0]
    assert labeler.get(example["thumbnail_url"]).status_code == 200
    assert labeler.get(example["image_url"]).status_code == 200


def test_s3_signed_urls_expire_soon_by_default(tmp_path):
    options = settings_for(tmp_path, S3_BUCKET="photos")["storage_options"]
    assert options["querystring_auth"] is True
    assert 0 < options["querystring_expire"] <= 900
    options = settings_for(tmp_path, S3_BUCKET="photos", S3_SIGNED_URL_SECONDS="120")["storage_options"]
    assert options["querystring_expire"] == 120


def test_guideline_examples_show_urls_made_now_not_frozen_at_publishing(world, users):
    """On S3 a URL frozen into the published version expires in minutes: pages and the API make
    the example photos' URLs when they answer."""
    from labeling.models import GuidelineVersion

    project, ex = world["project_a"], world["photos"]["ex"]
    version = GuidelineVersion.objects.get(project=project)
    stale = [{**e, "image_url": "https://bucket.example/x?Expires=1", "thumbnail_url": "https://bucket.example/t?Expires=1"}
             for e in version.examples]
    GuidelineVersion.objects.filter(pk=version.pk).update(examples=stale)

    labeler = client_for(world, "labeler")
    example = labeler.get(f"/api/projects/{project.pk}/guideline/").json()["examples"][0]
    assert (example["image_url"], example["thumbnail_url"]) == (ex.file.url, ex.thumbnail.url)
    for page in (f"/label/{project.pk}/guide/", f"/label/{project.pk}/"):
        html = labeler.get(page).content.decode()
        assert ex.thumbnail.url in html and "bucket.example" not in html, page
    planner = client_for(world, "planner")
    listed = planner.get(f"/api/projects/{project.pk}/guideline/versions/").json()
    assert listed["results"][0]["examples"][0]["thumbnail_url"] == ex.thumbnail.url
    html = planner.get(f"/projects/{project.pk}/guideline/v{version.version}/").content.decode()
    assert ex.thumbnail.url in html and "bucket.example" not in html
