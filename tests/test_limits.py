"""Issue 9, finding 5: limits on comment types per project, on the guideline's size and on the size
of a request (an import's upload above all), each refused with a clear 4xx before any work is done."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation

from accounts import services as accounts
from datasets.models import ImportJob
from labeling import services
from labeling.models import CommentType, GuidelineVersion, Project
from tests.conftest import make_photo

TOO_MANY = "A project can have at most 20 comment types."


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def types(n: int) -> list[dict]:
    return [{"slug": f"t{i}", "name": f"Type {i}", "min_length": 1, "max_length": 50} for i in range(n)]


def token_client(user):
    from rest_framework.test import APIClient

    _token, key = accounts.create_token(user, "limits")
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return c


@pytest.fixture
def planner(users):
    return token_client(users["planner"])


@pytest.fixture
def project(users):
    return services.create_project("Limits", created_by=users["planner"])


# ---------------------------------------------------------------- comment types


def test_settings_defaults_are_far_above_real_projects(settings):
    assert settings.LABELING_MAX_COMMENT_TYPES == 20
    assert settings.LABELING_MAX_GUIDELINE_CHARS == 200_000
    assert settings.UPLOAD_MAX_BYTES == 2 * 1024**3


def test_service_refuses_more_comment_types_than_the_limit(db):
    services.create_project("Twenty", comment_types=types(20))
    with pytest.raises(ValidationError) as exc:
        services.create_project("Twenty-one", comment_types=types(21))
    assert exc.value.message_dict == {"comment_types": [TOO_MANY]}
    assert not Project.objects.filter(name="Twenty-one").exists()


def test_api_refuses_a_project_with_too_many_types_before_checking_each(planner, django_assert_max_num_queries):
    body = {"name": "Huge", "comment_types": types(10_000)}
    # The token's few queries, and none per type.
    with django_assert_max_num_queries(5):
        r = planner.post("/api/projects/", body, format="json")
    assert r.status_code == 400, r.content[:300]
    assert r.json() == {"comment_types": [TOO_MANY]}
    assert not Project.objects.filter(name="Huge").exists()
    r = planner.post("/api/projects/", {"name": "Twenty-one", "comment_types": types(21)}, format="json")
    assert r.status_code == 400 and r.json() == {"comment_types": [TOO_MANY]}
    r = planner.post("/api/projects/", {"name": "Twenty", "comment_types": types(20)}, format="json")
    assert r.status_code == 201 and len(r.json()["comment_types"]) == 20


def test_api_refuses_adding_a_type_past_the_limit(planner, users):
    project = services.create_project("Full", comment_types=types(20))
    url = f"/api/projects/{project.pk}/comment-types/"
    r = planner.post(url, {"slug": "extra", "name": "Extra", "min_length": 1, "max_length": 9}, format="json")
    assert r.status_code == 400
    assert r.json() == {"comment_types": [TOO_MANY]}
    assert project.comment_types.count() == 20
    CommentType.objects.filter(project=project, slug="t0").delete()
    r = planner.post(url, {"slug": "extra", "name": "Extra", "min_length": 1, "max_length": 9}, format="json")
    assert r.status_code == 201 and project.comment_types.count() == 20


def type_rows(rows, initial=0):
    data = {"types-TOTAL_FORMS": str(len(rows)), "types-INITIAL_FORMS": str(initial),
            "types-MIN_NUM_FORMS": "1", "types-MAX_NUM_FORMS": "1000"}
    for i, r in enumerate(rows):
        for key, value in r.items():
            data[f"types-{i}-{key}"] = "on" if value is True else str(value)
    return data


def project_fields(name="Street food", **extra):
    return {"name": name, "is_active": "on", "overlap": "2", "cap_per_labeler": "300", "lease_minutes": "30",
            "max_repeat_run": "5", **extra}


def test_new_project_page_refuses_too_many_types(client, users):
    client.force_login(users["planner"])
    data = project_fields()
    data.update(type_rows([dict(t, position=i) for i, t in enumerate(types(21))]))
    r = client.post(reverse("project-new"), data)
    assert r.status_code == 200
    assert TOO_MANY in r.content.decode()
    assert not Project.objects.filter(name="Street food").exists()


def test_new_project_page_refuses_a_flood_of_rows_quickly(client, users, django_assert_max_num_queries):
    """As many rows as DATA_UPLOAD_MAX_NUMBER_FIELDS lets through: refused without a form per row."""
    client.force_login(users["planner"])
    data = project_fields()
    data.update(type_rows([dict(t, position=i) for i, t in enumerate(types(150))]))
    # Forms are built for at most absolute_max (50) rows, each with its constraint checks.
    with django_assert_max_num_queries(200):
        r = client.post(reverse("project-new"), data)
    assert r.status_code == 200
    assert not Project.objects.filter(name="Street food").exists()


def test_edit_page_refuses_adding_types_past_the_limit(client, users):
    project = services.create_project("Edited", comment_types=types(20))
    client.force_login(users["planner"])
    rows = [{"id": ct.pk, "name": ct.name, "slug": ct.slug, "min_length": 1, "max_length": 50, "position": i}
            for i, ct in enumerate(project.comment_types.order_by("position", "id"))]
    data = project_fields(name="Edited")
    data.update(type_rows(rows + [{"name": "Extra", "slug": "extra", "min_length": 1, "max_length": 9,
                                   "position": 20}], initial=20))
    r = client.post(reverse("project-edit", args=[project.pk]), data)
    assert r.status_code == 200
    assert TOO_MANY in r.content.decode()
    assert project.comment_types.count() == 20
    # Replacing one type in the same save is fine: the limit counts what is kept.
    rows[0]["DELETE"] = True
    data.update(type_rows(rows + [{"name": "Extra", "slug": "extra", "min_length": 1, "max_length": 9,
                                   "position": 20}], initial=20))
    r = client.post(reverse("project-edit", args=[project.pk]), data)
    assert r.status_code == 302, r.content.decode()[:2000]
    assert set(project.comment_types.values_list("slug", flat=True)) == {f"t{i}" for i in range(1, 20)} | {"extra"}


def test_edit_service_check_counts_what_was_stored(db):
    project = services.create_project("Stored", comment_types=types(20))
    CommentType.objects.create(project=project, slug="sneaked", name="Sneaked", min_length=1, max_length=5)
    with pytest.raises(ValidationError) as exc:
        services.check_comment_type_limit(project)
    assert exc.value.message_dict == {"comment_types": [TOO_MANY]}


# ---------------------------------------------------------------- guideline


BIG = "# Guideline\n\n" + "Write only what the photo shows. " * 150_000  # 5 MB, under the request limit


def test_service_refuses_an_oversized_guideline(project):
    with pytest.raises(ValidationError) as exc:
        services.save_guideline_draft(project, BIG)
    assert "at most 200,000 characters" in exc.value.message_dict["body"][0]
    with pytest.raises(ValidationError):
        services.publish_guideline(project, BIG)
    project.refresh_from_db()
    assert project.guideline_draft == "" and project.guideline_version == 0
    ok = "가" * 200_000  # the limit itself is accepted
    services.save_guideline_draft(project, ok)
    assert services.publish_guideline(project).body == ok


def test_api_refuses_an_oversized_guideline(planner, project):
    r = planner.put(f"/api/projects/{project.pk}/guideline/draft/", {"body": BIG}, format="json")
    assert r.status_code == 400
    assert "at most 200,000 characters" in r.json()["body"][0]
    r = planner.post(f"/api/projects/{project.pk}/guideline/publish/", {"body": BIG}, format="json")
    assert r.status_code == 400 and "body" in r.json()
    project.refresh_from_db()
    assert project.guideline_draft == "" and not GuidelineVersion.objects.filter(project=project).exists()


@pytest.mark.parametrize("action", ["save", "publish"])
def test_guideline_page_refuses_an_oversized_guideline(client, users, project, action):
    client.force_login(users["planner"])
    r = client.post(reverse("project-guideline", args=[project.pk]), {"body": BIG, "action": action})
    assert r.status_code == 200
    assert "at most 200,000 characters" in r.content.decode()
    project.refresh_from_db()
    assert project.guideline_draft == "" and project.guideline_version == 0


def test_guideline_preview_refuses_an_oversized_body(client, users, project):
    client.force_login(users["planner"])
    r = client.post(reverse("project-guideline-preview", args=[project.pk]), {"body": BIG})
    assert r.status_code == 400
    assert "at most 200,000 characters" in r.json()["error"]


# ---------------------------------------------------------------- request size


def staged(settings) -> list:
    root = Path(settings.MEDIA_ROOT) / "staging"
    return list(root.rglob("*")) if root.exists() else []


def photos(n: int, size: int) -> list:
    # Random bytes after a small JPEG: the limit is on bytes, the file need not decode.
    return [SimpleUploadedFile(f"p{i}.jpg", make_photo(width=64, height=64, seed=i) + os.urandom(size),
                               content_type="image/jpeg") for i in range(n)]


def test_import_page_refuses_an_upload_over_the_limit_before_staging(client, users, source, settings):
    settings.UPLOAD_MAX_BYTES = 300_000
    client.force_login(users["planner"])
    r = client.post(reverse("import-new"), {"source": source.pk, "mode": "files", "files": photos(3, 120_000)})
    assert r.status_code == 413
    html = r.content.decode()
    assert "The upload is too large" in html and "293.0\xa0KB" in html
    assert not ImportJob.objects.exists() and staged(settings) == []
    # Under the limit it goes through.
    r = client.post(reverse("import-new"), {"source": source.pk, "mode": "files", "files": photos(2, 100_000)})
    assert r.status_code == 302 and ImportJob.objects.count() == 1


def test_import_page_tells_its_script_the_limit(client, users, settings):
    settings.UPLOAD_MAX_BYTES = 300_000
    client.force_login(users["planner"])
    html = client.get(reverse("import-new")).content.decode()
    assert 'data-max-bytes="300000"' in html


def test_api_import_over_the_limit_is_413_and_stages_nothing(planner, source, settings):
    settings.UPLOAD_MAX_BYTES = 300_000
    r = planner.post("/api/imports/", {"source": source.pk, "files": photos(3, 120_000)}, format="multipart")
    assert r.status_code == 413
    assert "The upload is too large" in r.json()["detail"] and r.json()["code"] == "too_large"
    assert not ImportJob.objects.exists() and staged(settings) == []
    r = planner.post("/api/imports/", {"source": source.pk, "files": photos(2, 100_000)}, format="multipart")
    assert r.status_code == 201, r.content


def test_signed_in_uploads_may_pass_the_memory_limit_anonymous_ones_may_not(client, users, source, settings,
                                                                            planner):
    """Only a signed-in user's multipart body may be larger than DATA_UPLOAD_MAX_MEMORY_SIZE (an import);
    an anonymous one (a login form, say) is read by the CSRF check before anyone is known."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    settings.UPLOAD_MAX_BYTES = 1_000_000
    r = client.post(reverse("login"), {"username": "x", "password": "y", "f": photos(1, 200_000)})
    assert r.status_code == 413
    r = planner.post("/api/imports/", {"source": source.pk, "files": photos(1, 200_000)}, format="multipart")
    assert r.status_code == 201, r.content
    client.force_login(users["planner"])
    r = client.post(reverse("import-new"), {"source": source.pk, "mode": "files", "files": photos(1, 200_000)})
    assert r.status_code == 302


def test_a_forged_token_header_does_not_lift_the_anonymous_limit(client, settings, db):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    r = client.post(reverse("login"), {"username": "x", "password": "y", "f": photos(1, 200_000)},
                    HTTP_AUTHORIZATION="Token forged")
    assert r.status_code == 413


def test_json_bodies_keep_to_the_memory_limit_in_the_api_too(client, planner, project, settings):
    """DRF reads JSON from the stream, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE check."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    body = json.dumps({"username": "x", "password": "y" * 200_000})
    r = client.post("/api/auth/login/", body, content_type="application/json")
    assert r.status_code == 413 and r.json()["code"] == "too_large"
    r = planner.put(f"/api/projects/{project.pk}/guideline/draft/", {"body": "가" * 60_000}, format="json")
    assert r.status_code == 413
    r = planner.put(f"/api/projects/{project.pk}/guideline/draft/", {"body": "가" * 1000}, format="json")
    assert r.status_code == 200
