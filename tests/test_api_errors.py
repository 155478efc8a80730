"""Bad input that a fuzzer (schemathesis, tests/test_api_fuzz.py) turned into server errors: each
answers a 400 with a message that says what was wrong, on the API and on the pages that take the
same input. Runs on SQLite by default and on PostgreSQL with DATABASE_URL=postgres://...; the NUL
byte cases matter most there (PostgreSQL refuses NUL in text and in jsonb, SQLite stores it)."""
from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from datasets.models import Category, ImportJob, Subcategory
from labeling import services as labeling
from labeling.models import Assignment

from .test_api import image_row
from .test_labeling_api import GOOD

NUL_MESSAGE = "Null characters are not allowed."


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"  # the messages asserted below, untranslated


@pytest.fixture
def planner(api):
    return api("planner")


@pytest.fixture
def project(db, source, users):
    for n in range(3):
        image_row(source, n)
    project = labeling.create_project("fuzzed")
    labeling.sync_project_images(project)
    labeling.add_member(project, users["labeler"])
    return project


# ---------------------------------------------------------------- a category without a quota


def test_creating_a_category_without_a_quota_says_the_quota_is_missing(planner):
    response = planner.post("/api/categories/", {"slug": "drinks", "name": "Drinks"}, format="json")
    assert response.status_code == 400, response.content
    assert "quota" in response.json()
    assert not Category.objects.filter(slug="drinks").exists()


def test_creating_a_subcategory_without_a_quota_says_the_quota_is_missing(planner):
    response = planner.post("/api/subcategories/", {"category": "food", "slug": "tea", "name": "Tea"}, format="json")
    assert response.status_code == 400, response.content
    assert "quota" in response.json()
    assert not Subcategory.objects.filter(slug="tea").exists()


# ---------------------------------------------------------------- NUL bytes


@pytest.mark.parametrize("url", [
    "/api/images/?category=fo%00od",                # a django-filter CharFilter
    "/api/images/?licence=%00",
    "/api/subcategories/?category=%00",
    "/api/categories/?search=fo%00od",              # DRF's SearchFilter
    "/api/licences/cc-by%004.0/",                   # a slug looked up from the path
    "/api/projects/?search=%00",
    "/api/imports/1/items/?search=%00",
    "/api/images/?sha256=%00&page=1",
])
def test_a_nul_byte_in_a_query_or_path_is_a_400(planner, url):
    response = planner.get(url)
    assert response.status_code == 400, response.content
    assert response.json() == {"detail": NUL_MESSAGE}


@pytest.mark.parametrize("body", [
    {"category": "fo\x00od", "slug": "tea", "name": "Tea", "quota": 1},     # a SlugRelatedField
    {"category": "food", "slug": "tea", "name": "Tea", "quota": 1, "x\x00": 1},  # a key nobody reads
])
def test_a_nul_byte_in_a_json_body_is_a_400(planner, body):
    response = planner.post("/api/subcategories/", body, format="json")
    assert response.status_code == 400, response.content
    assert NUL_MESSAGE in json.dumps(response.json())
    assert not Subcategory.objects.filter(slug="tea").exists()


@pytest.mark.parametrize("location", [{"bucket": "a\x00b"}, {"bu\x00cket": "a"}, {"list": [["\x00"]]}])
def test_a_nul_byte_in_a_json_object_field_is_a_400(planner, location):
    # Source.location is a JSONField: jsonb refuses \u0000 anywhere in it.
    body = {"kind": "s3", "name": "S3 photos", "default_licence": "cc-by-4.0", "location": location}
    response = planner.post("/api/sources/", body, format="json")
    assert response.status_code == 400, response.content
    assert NUL_MESSAGE in json.dumps(response.json())


def test_a_nul_byte_in_a_submitted_comment_type_slug_is_a_400(project, users):
    client = APIClient()
    client.force_authenticate(users["labeler"])
    lease = client.post(f"/api/projects/{project.pk}/next/", {}, format="json").json()["assignments"][0]
    comments = {"reaction\x00": GOOD["reaction"], "specific": GOOD["specific"]}
    response = client.post(f"/api/assignments/{lease['id']}/submit/", {"comments": comments}, format="json")
    assert response.status_code == 400, response.content
    assert NUL_MESSAGE in json.dumps(response.json())
    assert Assignment.objects.get(pk=lease["id"]).status == "leased"


@pytest.mark.parametrize("field", ["category", "licence", "sou\x00rce"])
def test_a_nul_byte_in_a_multipart_field_is_a_400(planner, source, field):
    data = {"source": source.pk, "files": [SimpleUploadedFile("a.jpg", b"\x00\xff binary is fine")]}
    data[field] = "fo\x00od"
    response = planner.post("/api/imports/", data, format="multipart")
    assert response.status_code == 400, response.content
    assert NUL_MESSAGE in json.dumps(response.json())


@pytest.mark.parametrize("url", [
    "/datasets/images/?category=fo%00od",
    "/datasets/images/?licence=%00",
    "/projects/{project}/labelers/?q=%00",
])
def test_the_pages_refuse_a_nul_byte_in_their_filters(project, url, users):
    client = Client()
    client.force_login(users["planner"])
    response = client.get(url.format(project=project.pk))
    assert response.status_code == 400
    assert NUL_MESSAGE in response.content.decode()


# ---------------------------------------------------------------- bad numbers in page filters


@pytest.mark.parametrize("url", [
    "/datasets/images/?source=%C2%B2",              # "²".isdigit() is true, int("²") fails
    "/datasets/images/?source=99999999999999999999",
    "/projects/{project}/examples/pick/?category=%C2%B2",
    "/projects/{project}/examples/pick/?category=99999999999999999999",
    "/datasets/images/?page=99999999999999999999",
    "/projects/{project}/?page=99999999999999999999",
])
def test_the_pages_take_odd_numbers_in_their_filters(project, users, url):
    client = Client()
    client.force_login(users["planner"])
    assert client.get(url.format(project=project.pk)).status_code == 200


# ---------------------------------------------------------------- datetime filters


@pytest.mark.parametrize("value", [
    "0001-01-01T00:00:00+01:00",    # before datetime.min once converted to UTC
    "9999-12-31T23:59:59-01:00",    # after datetime.max
    "2020-01-01T00:00:00+99:00",    # an offset past a day
    "7780-04-12T11:10:26-19:52",    # an offset PostgreSQL refuses (past 15:59), Python takes
    "2020-01-01T00:00:00+14:01",
    "0001-01-01T00:00:00",          # a naive time made aware in Asia/Seoul (UTC+9)
])
def test_a_datetime_filter_out_of_range_is_a_400(planner, value):
    response = planner.get("/api/images/", {"created_after": value})
    assert response.status_code == 400, response.content
    assert "created_after" in response.json()


def test_a_datetime_filter_with_an_offset_in_use_still_filters(planner, source):
    image_row(source, 1)
    for value in ("2000-01-01T00:00:00+14:00", "2000-01-01T00:00:00-12:00", "2000-01-01T09:00:00"):
        response = planner.get("/api/images/", {"created_after": value})
        assert response.status_code == 200, response.content
        assert response.json()["count"] == 1


# ---------------------------------------------------------------- deep JSON


def test_deeply_nested_json_sent_anonymously_to_login_is_a_400():
    body = "[" * 50_000 + "]" * 50_000
    response = APIClient().post("/api/auth/login/", body, content_type="application/json")
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]


def test_json_nested_past_the_limit_is_a_400_on_every_endpoint(planner):
    location: dict = {}
    inner = location
    for _ in range(100):
        inner["a"] = {}
        inner = inner["a"]
    body = {"kind": "s3", "name": "deep", "default_licence": "cc-by-4.0", "location": location}
    response = planner.post("/api/sources/", body, format="json")
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]


def test_json_at_a_reasonable_depth_still_works(planner):
    body = {"kind": "s3", "name": "shallow", "default_licence": "cc-by-4.0", "location": {"a": {"b": {"c": [1]}}}}
    assert planner.post("/api/sources/", body, format="json").status_code == 201


# ---------------------------------------------------------------- page numbers


@pytest.mark.parametrize("url", [
    "/api/categories/?page=99999999999999999999",
    "/api/images/?page=9223372036854775808",
    "/api/projects/{project}/progress/?page=99999999999999999999",
    "/api/projects/{project}/progress/?page=4611686018427387904&page_size=500",
    "/api/projects/{project}/history/?page=99999999999999999999",
    "/api/projects/{project}/members/?page=1" + "0" * 5000,
])
def test_a_page_number_beyond_bigint_is_a_400(project, users, url):
    client = APIClient()
    client.force_authenticate(users["admin"])
    response = client.get(url.format(project=project.pk))
    assert response.status_code == 400, response.content
    assert "page" in json.dumps(response.json())


@pytest.mark.parametrize("header", ["T\xf6ken abc", "\xff", "Token \xff\xfe"])
def test_an_authorization_header_that_is_no_utf_8_is_refused_not_a_500(db, header):
    # The header arrives as Latin-1 bytes; its scheme word was decoded as UTF-8 unguarded.
    response = APIClient().get("/api/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code in (401, 403)


BIGINT_PLUS_ONE = str(2**63)


@pytest.mark.parametrize("method,url", [
    ("post", "/api/projects/{big}/next/"),                   # a foreign-key lookup (project_id)
    ("get", "/api/projects/{project}/members/{big}/"),       # user_id
    ("delete", "/api/projects/{project}/members/{big}/"),
    ("get", "/api/assignments/{big}/"),
    ("get", "/api/projects/{project}/members/1" + "0" * 5000 + "/"),
])
def test_an_id_beyond_bigint_in_an_api_url_is_a_json_404(project, users, method, url):
    client = APIClient()
    client.force_authenticate(users["labeler" if "next" in url else "admin"])
    response = getattr(client, method)(url.format(project=project.pk, big=BIGINT_PLUS_ONE))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("url", ["/projects/{project}/labelers/{big}/cap/", "/projects/{project}/labelers/{big}/active/"])
def test_an_id_beyond_bigint_in_a_page_url_is_a_404(project, users, url):
    client = Client()
    client.force_login(users["planner"])
    response = client.post(url.format(project=project.pk, big=BIGINT_PLUS_ONE), {"cap_override": "1"})
    assert response.status_code == 404
    assert "text/html" in response["Content-Type"]


def test_an_unknown_api_url_answers_json(planner):
    for url in ("/api/categories/0.5/", "/api/nothing-here/"):
        response = planner.get(url)
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}


def test_a_page_past_the_last_one_is_still_a_404(planner):
    # DRF's answer for a page that does not exist (yet): clients stop paging on it.
    assert planner.get("/api/categories/?page=1000").status_code == 404


# ---------------------------------------------------------------- manifests parsed by hand


@pytest.mark.parametrize("name,body,reason", [
    # The manifest is parsed while the request runs (header errors answer at once): a 500.
    ("m.jsonl", "[" * 50_000 + "]" * 50_000 + "\n", "line 1: JSON nested too deeply"),
    # NUL in a path or slug crashed the import task ("embedded null byte"; PostgreSQL refuses it).
    ("m.jsonl", '{"path": "a\\u0000.jpg"}\n', "line 1: a field holds a NUL character"),
    ("m.csv", "path,category\na.jpg,fo\x00od\n", "line 2: a field holds a NUL character"),
])
def test_a_manifest_row_nested_too_deeply_or_with_a_nul_is_refused_alone(
        planner, source, name, body, reason, django_capture_on_commit_callbacks):
    manifest = SimpleUploadedFile(name, body.encode())
    with django_capture_on_commit_callbacks(execute=True):
        response = planner.post("/api/imports/", {"source": source.pk, "manifest": manifest}, format="multipart")
    assert response.status_code == 201, response.content
    job = ImportJob.objects.get(pk=response.json()["id"])
    assert (job.status, job.refused) == ("done", 1)
    assert list(job.items.values_list("reason", flat=True)) == [reason]
