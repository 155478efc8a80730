"""API flows a planner and an ML engineer go through: quotas, sources, imports and their reports,
the image catalogue with its filters, and the OpenAPI schema and docs."""
from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from datasets.models import Category, Image, ImportItem, ImportJob, Licence, Source, Subcategory
from tests.conftest import make_photo


@pytest.fixture
def planner(api):
    return api("planner")


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def image_row(source, n: int, **fields) -> Image:
    """A catalogue row without running the ingest path (for filter and pagination tests)."""
    digest = hashlib.sha256(f"row-{n}-{uuid.uuid4()}".encode()).hexdigest()
    values = dict(
        file=f"images/{digest[:2]}/{digest}.jpg", thumbnail=f"thumbs/{digest[:2]}/{digest}.jpg",
        sha256=digest, pixel_sha256=hashlib.sha256(digest.encode()).hexdigest(), phash=n,
        width=640, height=480, original_width=640, original_height=480, original_format="JPEG",
        original_bytes=1000, original_name=f"photo-{n}.jpg", source=source, licence=source.default_licence,
    )
    values.update(fields)
    return Image.objects.create(**values)


# ---------------------------------------------------------------- schema and docs


def test_schema_and_docs_render(planner, tmp_path):
    schema = planner.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    for path in ("/api/images/", "/api/imports/", "/api/imports/{job_pk}/items/", "/api/quotas/", "/api/tokens/"):
        assert path in paths
    docs = planner.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content
    assert planner.get("/api/redoc/").status_code == 200
    # The schema validates against the OpenAPI spec with no generator warnings.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))


# ---------------------------------------------------------------- categories, quotas, sources


def test_planner_edits_quotas_and_retires_a_subcategory(planner, source):
    food = Category.objects.get(slug="food")
    korean = food.subcategories.get(slug="korean")

    r = planner.patch(f"/api/categories/{food.pk}/", {"quota": 20_000, "full_policy": "refuse"}, format="json")
    assert r.status_code == 200 and r.json()["quota"] == 20_000
    r = planner.patch(f"/api/subcategories/{korean.pk}/", {"quota": 8_000}, format="json")
    assert r.status_code == 200 and r.json()["quota"] == 8_000

    r = planner.patch(f"/api/subcategories/{korean.pk}/", {"is_active": False}, format="json")
    assert r.status_code == 200 and r.json()["is_active"] is False

    quotas = planner.get("/api/quotas/").json()
    food_row = next(c for c in quotas["categories"] if c["slug"] == "food")
    assert food_row["target"] == 20_000 and food_row["labeled"] == 0  # no comments yet
    assert "korean" not in [s["slug"] for s in food_row["subcategories"]]
    with_retired = planner.get("/api/quotas/?include_retired=true").json()
    food_row = next(c for c in with_retired["categories"] if c["slug"] == "food")
    assert {"slug": "korean", "target": 8_000, "is_active": False}.items() <= next(
        s for s in food_row["subcategories"] if s["slug"] == "korean"
    ).items()

    # Only active subcategories when filtering, and the retired one takes no images.
    active = planner.get("/api/subcategories/?category=food&is_active=true").json()["results"]
    assert [s["slug"] for s in active] == ["non-korean", "packaged"]
    r = planner.post(
        "/api/imports/", {"source": source.pk, "category": "food", "subcategory": "korean", "files": [upload("a.jpg", make_photo())]},
        format="multipart",
    )
    assert r.status_code == 400 and "retired" in r.json()["subcategory"][0]
    assert not ImportJob.objects.exists()


def test_category_validation_and_delete_rules(planner, source):
    r = planner.post("/api/categories/", {"slug": "toys", "name": "Toys", "quota": 300}, format="json")
    assert r.status_code == 201
    toys = r.json()
    assert toys["subcategories"] == [] and toys["full_policy"] == "warn"

    assert set(planner.post("/api/categories/", {"slug": "toys", "name": "Again", "quota": 1}, format="json").json()) == {"slug"}
    bad = planner.post("/api/categories/", {"slug": "bad slug!", "name": "", "quota": -1}, format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"slug", "name", "quota"}

    r = planner.post("/api/subcategories/", {"category": "toys", "slug": "lego", "name": "Lego", "quota": 100}, format="json")
    assert r.status_code == 201 and r.json()["category"] == "toys"
    dup = planner.post("/api/subcategories/", {"category": "toys", "slug": "lego", "name": "Lego 2", "quota": 1}, format="json")
    assert dup.status_code == 400 and "non_field_errors" in dup.json()
    # The same slug in another category is fine.
    assert planner.post("/api/subcategories/", {"category": "other", "slug": "lego", "name": "Lego", "quota": 1},
                        format="json").status_code == 201
    unknown = planner.post("/api/subcategories/", {"category": "nope", "slug": "x", "name": "X", "quota": 1}, format="json")
    assert unknown.status_code == 400 and set(unknown.json()) == {"category"}
    moved = planner.patch(f"/api/subcategories/{r.json()['id']}/", {"category": "food"}, format="json")
    assert moved.status_code == 400 and "category" in moved.json()

    # An empty category goes, with its empty subcategories.
    assert planner.delete(f"/api/categories/{toys['id']}/").status_code == 204
    assert not Category.objects.filter(slug="toys").exists() and not Subcategory.objects.filter(category__slug="toys").exists()

    # One with images must be retired instead: 409, and nothing is deleted.
    people = Category.objects.get(slug="people")
    image_row(source, 1, category=people)
    r = planner.delete(f"/api/categories/{people.pk}/")
    assert r.status_code == 409 and "retire" in r.json()["detail"]
    assert Category.objects.filter(slug="people").exists() and people.subcategories.count() == 2
    # A subcategory with images likewise; a licence a source uses likewise.
    selfie = people.subcategories.get(slug="selfie")
    image_row(source, 2, category=people, subcategory=selfie)
    assert planner.delete(f"/api/subcategories/{selfie.pk}/").status_code == 409
    r = planner.delete(f"/api/licences/{source.default_licence.code}/")
    assert r.status_code == 409 and "sources" in r.json()["detail"]
    assert Licence.objects.filter(pk=source.default_licence.pk).exists()
    r = planner.patch(f"/api/categories/{people.pk}/", {"is_active": False}, format="json")
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert "people" not in [c["slug"] for c in planner.get("/api/quotas/").json()["categories"]]


def test_planner_creates_a_source_and_a_licence(planner, users):
    r = planner.post("/api/sources/", {"kind": "s3", "name": "Open Images", "default_licence": "cc-by-2.0",
                                       "location": {"bucket": "open-images", "prefix": "train/"}}, format="json")
    assert r.status_code == 201
    body = r.json()
    assert body["created_by"] == "planner1" and body["default_licence"] == "cc-by-2.0"
    assert planner.get("/api/sources/?licence=cc-by-2.0").json()["count"] == 1

    r = planner.post("/api/sources/", {"kind": "tape", "name": "Open Images", "default_licence": "nope", "location": []},
                     format="json")
    assert r.status_code == 400 and set(r.json()) == {"kind", "name", "default_licence", "location"}

    r = planner.patch(f"/api/sources/{body['id']}/", {"description": "9M images"}, format="json")
    assert r.status_code == 200 and r.json()["description"] == "9M images" and r.json()["created_by"] == "planner1"

    r = planner.post("/api/licences/", {"code": "team-photo-1.0", "name": "Team photos", "commercial_use": True,
                                        "attribution_required": False}, format="json")
    assert r.status_code == 201
    assert planner.get("/api/licences/team-photo-1.0/").json()["name"] == "Team photos"
    assert planner.get("/api/licences/cc-by-nc-4.0/").json()["commercial_use"] is False


# ---------------------------------------------------------------- imports and their reports


def test_upload_files_and_a_zip_then_read_the_report(planner, source, django_capture_on_commit_callbacks):
    first = make_photo(seed=1)
    files = [
        upload("first.jpg", first),
        upload("second.png", make_photo(seed=2, fmt="PNG")),
        upload("first-again.jpg", first),
        upload("notes.jpg", b"this is a text file, not a photo"),
        upload("holiday.zip", zip_of({"beach/a.jpg": make_photo(seed=3), "b.jpg": make_photo(seed=4),
                                      "../escape.jpg": make_photo(seed=5)})),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        r = planner.post("/api/imports/", {"source": source.pk, "category": "food", "subcategory": "korean",
                                           "author": "Kim", "files": files}, format="multipart")
    assert r.status_code == 201, r.content
    created = r.json()
    assert created["kind"] == "upload" and created["input"]["files"][-1] == "holiday.zip"
    assert r["Location"] == created["links"]["self"]

    job = planner.get(created["links"]["self"]).json()
    assert job["status"] == "done" and job["percent"] == 100
    assert (job["total"], job["accepted"], job["duplicates"], job["refused"]) == (7, 4, 1, 2)

    items = planner.get(created["links"]["items"]).json()
    assert items["count"] == 7 and [i["position"] for i in items["results"]] == list(range(7))

    duplicates = planner.get(created["links"]["items"] + "?outcome=duplicate").json()["results"]
    assert [d["name"] for d in duplicates] == ["first-again.jpg"]
    original = ImportItem.objects.get(job_id=created["id"], name="first.jpg").image
    assert duplicates[0]["duplicate_of"] == str(original.pk)

    refused = {i["name"]: i["reason"] for i in planner.get(created["links"]["items"] + "?outcome=refused").json()["results"]}
    assert set(refused) == {"notes.jpg", "holiday.zip/../escape.jpg"}
    assert "../" in refused["holiday.zip/../escape.jpg"]
    assert planner.get(created["links"]["items"] + "?outcome=maybe").status_code == 400

    images = planner.get(f"/api/images/?import_job={created['id']}").json()
    assert images["count"] == 4
    one = images["results"][0]
    assert (one["category"], one["subcategory"], one["author"], one["licence"]) == ("food", "korean", "Kim", "cc-by-4.0")
    assert one["file_url"].startswith("http://testserver/media/images/") and one["thumbnail_url"].endswith(".jpg")
    assert "Kim" in one["attribution"] and "CC BY 4.0" in one["attribution"]
    stored = Image.objects.get(pk=one["id"])
    assert default_storage.exists(stored.file.name) and default_storage.exists(stored.thumbnail.name)

    quotas = planner.get("/api/quotas/").json()
    food = next(c for c in quotas["categories"] if c["slug"] == "food")
    assert food["collected"] == 4 and next(s for s in food["subcategories"] if s["slug"] == "korean")["collected"] == 4


def test_manifest_import_reports_malformed_rows(planner, source, tmp_path, django_capture_on_commit_callbacks):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "kimchi.jpg").write_bytes(make_photo(seed=10))
    (photos / "cat.jpg").write_bytes(make_photo(seed=11))
    (photos / "nc.jpg").write_bytes(make_photo(seed=12))
    manifest = (
        "path,category,subcategory,licence,author,title\n"
        "kimchi.jpg,food,korean,cc-by-2.0,Lee,Kimchi stew\n"
        "cat.jpg,animals,pet,,Park,\n"
        "nc.jpg,animals,pet,cc-by-nc-4.0,Choi,\n"
        "broken.jpg,food,korean,cc0-1.0,too,many,fields\n"
        "missing.jpg,food,korean,,,\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        r = planner.post("/api/imports/", {"source": source.pk, "manifest_base": str(photos),
                                           "manifest": upload("batch.csv", manifest.encode())}, format="multipart")
    assert r.status_code == 201, r.content
    assert r.json()["input"] == {"manifest": "batch.csv", "format": "csv"}
    job = planner.get(r.json()["links"]["self"]).json()
    assert (job["status"], job["total"], job["accepted"], job["refused"]) == ("done", 5, 2, 3)

    refused = planner.get(r.json()["links"]["items"] + "?outcome=refused", HTTP_ACCEPT_LANGUAGE="en").json()["results"]
    reasons = {i["name"].split(":")[0]: i["reason"] for i in refused}
    assert "commercial" in reasons["row 4"]
    assert "fields" in reasons["row 5"]
    assert "row 6" in reasons

    kimchi = planner.get("/api/images/?search=kimchi").json()["results"]
    assert len(kimchi) == 1
    assert (kimchi[0]["category"], kimchi[0]["subcategory"], kimchi[0]["licence"], kimchi[0]["title"]) == (
        "food", "korean", "cc-by-2.0", "Kimchi stew")
    assert kimchi[0]["attribution"].startswith("Kimchi stew, by Lee")
    assert planner.get("/api/images/?category=animals&subcategory=pet").json()["count"] == 1


def test_import_validation_errors_create_nothing(planner, api, source, tmp_path, settings):
    photo = make_photo()

    def post(data, client=planner):
        return client.post("/api/imports/", data, format="multipart")

    r = post({"source": source.pk})
    assert r.status_code == 400 and "exactly one" in r.json()["non_field_errors"][0]
    r = post({"source": source.pk, "files": [upload("a.jpg", photo)], "folder": str(tmp_path)})
    assert r.status_code == 400 and "files, folder" in r.json()["non_field_errors"][0]
    r = post({"source": 9999, "files": [upload("a.jpg", photo)]})
    assert r.status_code == 400 and set(r.json()) == {"source"}
    r = post({"source": source.pk, "subcategory": "korean", "files": [upload("a.jpg", photo)]})
    assert r.status_code == 400 and set(r.json()) == {"subcategory"}
    r = post({"source": source.pk, "category": "people", "subcategory": "korean", "files": [upload("a.jpg", photo)]})
    assert r.status_code == 400 and "no subcategory" in r.json()["subcategory"][0]
    r = post({"source": source.pk, "licence": "cc-by-nc-4.0", "files": [upload("a.jpg", photo)]})
    assert r.status_code == 400 and "commercial" in r.json()["licence"][0]
    r = post({"source": source.pk, "licence": "no-such-licence", "files": [upload("a.jpg", photo)]})
    assert r.status_code == 400 and set(r.json()) == {"licence"}
    r = post({"source": source.pk, "s3_prefix": "train/", "files": [upload("a.jpg", photo)]})
    assert r.status_code == 400 and set(r.json()) == {"s3_bucket"}

    # Refused by the service: a folder outside INGEST_ALLOWED_ROOTS, a manifest with no path column.
    settings.INGEST = {**settings.INGEST, "ALLOWED_ROOTS": [str(tmp_path / "allowed")]}
    r = planner.post("/api/imports/", {"source": source.pk, "folder": "/etc"}, format="json")
    assert r.status_code == 400 and r.json()["detail"]
    r = post({"source": source.pk, "manifest": upload("m.csv", b"name,licence\na.jpg,cc0-1.0\n")})
    assert r.status_code == 400 and "path" in r.json()["detail"]

    # Engineers read imports but cannot start one.
    assert post({"source": source.pk, "files": [upload("a.jpg", photo)]}, client=api("engineer")).status_code == 403
    assert not ImportJob.objects.exists()
    assert not default_storage.exists("staging") or default_storage.listdir("staging") == ([], [])


def test_s3_and_folder_imports_are_recorded(planner, source, tmp_path, settings):
    settings.INGEST = {**settings.INGEST, "S3_ENDPOINT_URLS": ["http://127.0.0.1:5000"]}  # issue 9: only these
    folder = tmp_path / "incoming"
    folder.mkdir()
    r = planner.post("/api/imports/", {"source": source.pk, "folder": str(folder), "category": "places"}, format="json")
    assert r.status_code == 201 and r.json()["input"] == {"folder": str(folder)} and r.json()["category"] == "places"
    r = planner.post("/api/imports/", {"source": source.pk, "s3_bucket": "photos", "s3_prefix": "2024/",
                                       "s3_endpoint_url": "http://127.0.0.1:5000"}, format="json")
    assert r.status_code == 201 and r.json()["input"]["s3_prefix"] == "2024/"
    listed = planner.get("/api/imports/?kind=s3").json()
    assert [j["kind"] for j in listed["results"]] == ["s3"]
    assert planner.get("/api/imports/").json()["count"] == 2


# ---------------------------------------------------------------- the image catalogue


def test_image_filters_search_and_pagination(api, source):
    engineer = api("engineer")
    food, animals = Category.objects.get(slug="food"), Category.objects.get(slug="animals")
    pet = animals.subcategories.get(slug="pet")
    other_source = Source.objects.create(kind="upload", name="Other", default_licence=Licence.objects.get(code="cc0-1.0"))
    for n in range(53):
        image_row(source, n, category=food)
    cat_photo = image_row(other_source, 100, category=animals, subcategory=pet, title="Sleepy cat", author="Jung",
                          licence=other_source.default_licence)
    old = image_row(source, 101, original_name="old-scan.jpg")
    Image.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))

    page = engineer.get("/api/images/").json()
    assert page["count"] == 55 and len(page["results"]) == 50 and page["next"] and page["previous"] is None
    assert len(engineer.get(page["next"]).json()["results"]) == 5
    assert len(engineer.get("/api/images/?page_size=20").json()["results"]) == 20
    assert engineer.get("/api/images/?page=9").status_code == 404

    def ids(query: str) -> list[str]:
        r = engineer.get(f"/api/images/?page_size=500&{query}")
        assert r.status_code == 200, r.content
        return [i["id"] for i in r.json()["results"]]

    assert len(ids("category=food")) == 53
    assert ids("category=animals&subcategory=pet") == [str(cat_photo.pk)]
    assert ids(f"source={other_source.pk}") == ids("licence=cc0-1.0") == [str(cat_photo.pk)]
    assert ids(f"sha256={cat_photo.sha256}") == [str(cat_photo.pk)]
    assert ids("phash=100") == [str(cat_photo.pk)]
    assert ids("search=sleepy") == ids("search=Jung") == [str(cat_photo.pk)]
    assert ids("uncategorised=true") == [str(old.pk)]
    week_ago = (timezone.now() - timedelta(days=7)).isoformat()
    assert ids(f"created_before={week_ago}".replace("+", "%2B")) == [str(old.pk)]
    assert len(ids(f"created_after={week_ago}".replace("+", "%2B"))) == 54
    assert ids("ordering=created_at")[0] == str(old.pk)
    assert ids("ordering=-created_at")[-1] == str(old.pk)

    bad = engineer.get("/api/images/?created_after=yesterday&source=abc")
    assert bad.status_code == 400 and set(bad.json()) == {"created_after", "source"}


def test_planner_recategorises_an_image(planner, api, source):
    image = image_row(source, 1)
    url = f"/api/images/{image.pk}/"

    r = planner.patch(url, {"category": "food", "subcategory": "korean"}, format="json")
    assert r.status_code == 200 and (r.json()["category"], r.json()["subcategory"]) == ("food", "korean")
    r = planner.patch(url, {"subcategory": "packaged"}, format="json")
    assert r.status_code == 200 and (r.json()["category"], r.json()["subcategory"]) == ("food", "packaged")
    # Moving to another category without a subcategory clears the old one.
    r = planner.patch(url, {"category": "places"}, format="json")
    assert r.status_code == 200 and (r.json()["category"], r.json()["subcategory"]) == ("places", None)

    r = planner.patch(url, {"subcategory": "korean"}, format="json")
    assert r.status_code == 400 and "no subcategory 'korean'" in r.json()["subcategory"][0]
    Subcategory.objects.filter(slug="landmark").update(is_active=False)
    r = planner.patch(url, {"subcategory": "landmark"}, format="json")
    assert r.status_code == 400 and "retired" in r.json()["subcategory"][0]
    assert planner.patch(url, {"category": "nope"}, format="json").status_code == 400

    # A full subcategory whose category refuses past its quota refuses the move too.
    Category.objects.filter(slug="animals").update(full_policy="refuse")
    Subcategory.objects.filter(slug="pet").update(quota=1)
    image_row(source, 2, category=Category.objects.get(slug="animals"), subcategory=Subcategory.objects.get(slug="pet"))
    r = planner.patch(url, {"category": "animals", "subcategory": "pet"}, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert r.status_code == 400 and "full" in r.json()["detail"]

    assert api("engineer").patch(url, {"category": "food"}, format="json").status_code == 403
    assert planner.put(url, {"category": "food"}, format="json").status_code == 405
    assert planner.delete(url).status_code == 405
    image.refresh_from_db()
    assert (image.category.slug, image.subcategory) == ("places", None)


def test_quota_dashboard_flags_full_and_over(api, source):
    other = Category.objects.get(slug="other")
    other.subcategories.filter(slug="clothing").update(quota=2)
    clothing = other.subcategories.get(slug="clothing")
    for n in range(3):
        image_row(source, n, category=other, subcategory=clothing)
    image_row(source, 9, category=other)
    data = api("engineer").get("/api/quotas/").json()
    row = next(c for c in data["categories"] if c["slug"] == "other")
    sub = next(s for s in row["subcategories"] if s["slug"] == "clothing")
    assert (sub["target"], sub["collected"], sub["percent"], sub["full"], sub["over"]) == (2, 3, 100, True, True)
    assert (row["collected"], row["uncategorised"], row["full"]) == (4, 1, False)
    assert data["totals"]["collected"] == 4 and data["totals"]["labeled"] == 0


def test_me(api, users):
    assert api("planner").get("/api/me/").json() == {"id": users["planner"].pk, "username": "planner1",
                                                     "role": "planner", "effective_role": "planner"}
    assert api("admin").get("/api/me/").json()["effective_role"] == "admin"
