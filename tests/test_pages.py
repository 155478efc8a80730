"""HTML pages: who may open what, and what the forms do."""
from __future__ import annotations

import io
import zipfile

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD, ROLES, make_photo

ANON = "anonymous"
ALL = (ANON, *ROLES)
READERS = {"planner", "engineer", "admin"}
PLANNERS = {"planner", "admin"}


@pytest.fixture
def catalogue(db, source):
    """One import with an accepted and a duplicate line, so every detail page has something."""
    from datasets import services
    from datasets.models import ImportItem, ImportJob

    result = services.ingest_one(make_photo(seed=1), source=source, category="food", subcategory="korean",
                                 original_name="kimchi.jpg")
    job = ImportJob.objects.create(source=source, kind="upload", status="done", total=2, processed=2,
                                   accepted=1, duplicates=1)
    ImportItem.objects.create(job=job, position=0, name="kimchi.jpg", outcome="accepted", image=result.image)
    ImportItem.objects.create(job=job, position=1, name="again.jpg", outcome="duplicate",
                              reason="Same bytes as an image already stored.", duplicate_of=result.image)
    return {"image": result.image, "job": job}


def page_matrix():
    """(url name, args key, roles that get 200)."""
    return [
        ("quota-dashboard", None, READERS),
        ("categories", None, PLANNERS),
        ("category-edit", "category", PLANNERS),
        ("sources", None, READERS),
        ("imports", None, READERS),
        ("import-new", None, PLANNERS),
        ("import-detail", "job", READERS),
        ("import-progress", "job", READERS),
        ("images", None, READERS),
        ("image-detail", "image", READERS),
        ("tokens", None, {"engineer", "admin"}),
        ("runs", None, READERS),
        ("labeler-home", None, {"labeler", "admin"}),
    ]


@pytest.mark.parametrize("role", ALL)
@pytest.mark.parametrize("name,arg,allowed", page_matrix(), ids=[p[0] for p in page_matrix()])
def test_page_access(client, users, catalogue, role, name, arg, allowed):
    from datasets.models import Category

    args = {None: [], "category": [Category.objects.get(slug="food").pk], "job": [catalogue["job"].pk],
            "image": [catalogue["image"].pk]}[arg]
    if role != ANON:
        client.force_login(users[role])
    url = reverse(name, args=args)
    response = client.get(url)
    if role == ANON:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    elif role in allowed:
        assert response.status_code == 200, response.content[:500]
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("role,target", [(ANON, "login"), ("labeler", "labeler-home"), ("planner", "quota-dashboard"),
                                         ("engineer", "quota-dashboard"), ("admin", "quota-dashboard")])
def test_home_sends_each_role_to_its_start_page(client, users, role, target):
    if role != ANON:
        client.force_login(users[role])
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse(target))


@pytest.mark.parametrize("role", ROLES)
def test_nav_shows_only_what_the_role_may_open(client, users, role):
    client.force_login(users[role])
    html = client.get(reverse("home"), follow=True).content.decode()
    assert (reverse("categories") in html) == (role in PLANNERS)
    assert (reverse("tokens") in html) == (role in {"engineer", "admin"})
    assert (reverse("runs") in html) == (role in {"engineer", "admin"})
    assert (reverse("quota-dashboard") in html) == (role in READERS)
    assert (reverse("admin:index") in html) == (role == "admin")


# ---------------------------------------------------------------- login, language, labeler home


def test_login_wrong_then_right_password(client, users):
    response = client.post(reverse("login"), {"username": "planner1", "password": "wrong"})
    assert response.status_code == 200
    assert "아이디 또는 비밀번호가 틀렸습니다" in response.content.decode()  # Korean by default
    response = client.post(reverse("login"), {"username": "planner1", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("quota-dashboard")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("quota-dashboard")).status_code == 302


def test_labeler_home_is_korean_and_honest(client, users):
    client.force_login(users["labeler"])
    html = client.get(reverse("labeler-home")).content.decode()
    assert "labeler1" in html
    assert "아직 배정된 라벨링 프로젝트가 없습니다" in html
    assert 'lang="ko"' in html


def test_language_switch_to_english(client, users):
    client.force_login(users["labeler"])
    client.post("/i18n/setlang/", {"language": "en", "next": reverse("labeler-home")})
    html = client.get(reverse("labeler-home")).content.decode()
    assert "No labeling project has been assigned to you yet" in html


# ---------------------------------------------------------------- quota dashboard


def test_quota_dashboard_counts_link_to_filtered_images(client, users, catalogue):
    client.force_login(users["planner"])
    html = client.get(reverse("quota-dashboard")).content.decode()
    assert "?category=food&amp;subcategory=korean" in html
    response = client.get(reverse("images"), {"category": "food", "subcategory": "korean"})
    assert str(catalogue["image"].pk) in response.content.decode()
    assert str(catalogue["image"].pk) not in client.get(reverse("images"), {"category": "people"}).content.decode()


def test_quota_dashboard_queries_do_not_grow_with_images(client, users, source):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from datasets import services

    client.force_login(users["planner"])
    services.ingest_one(make_photo(seed=10), source=source, category="food", subcategory="korean")
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("quota-dashboard"))
    for seed, (cat, sub) in enumerate([("people", "selfie"), ("places", "landmark"), ("animals", "pet")], start=11):
        services.ingest_one(make_photo(seed=seed), source=source, category=cat, subcategory=sub)
    with CaptureQueriesContext(connection) as more:
        html = client.get(reverse("quota-dashboard")).content.decode()
    assert len(more) == len(few)
    assert "?category=animals&amp;subcategory=pet" in html


def test_full_and_over_quota_bars(client, users, source):
    from datasets import services
    from datasets.models import Subcategory

    Subcategory.objects.filter(slug="pet").update(quota=1)
    Subcategory.objects.filter(slug="selfie").update(quota=1)
    services.ingest_one(make_photo(seed=20), source=source, category="animals", subcategory="pet")
    services.ingest_one(make_photo(seed=21), source=source, category="people", subcategory="selfie")
    services.ingest_one(make_photo(seed=22), source=source, category="people", subcategory="selfie")
    client.force_login(users["planner"])
    html = client.get(reverse("quota-dashboard")).content.decode()
    pet = html[html.index('data-subcategory="pet"'):]
    selfie = html[html.index('data-subcategory="selfie"'):]
    assert "bar-full" in pet[:600] and "bar-over" not in pet[:600]
    assert "bar-over" in selfie[:600]


# ---------------------------------------------------------------- categories


def test_add_category_and_reject_bad_input(client, users):
    from datasets.models import Category

    client.force_login(users["planner"])
    url = reverse("categories")
    bad = client.post(url, {"new-name": "Drinks", "new-slug": "food", "new-quota": "-5", "new-full_policy": "warn"})
    assert bad.status_code == 200
    form = bad.context["form"]
    assert "slug" in form.errors and "quota" in form.errors
    assert not Category.objects.filter(name="Drinks").exists()
    ok = client.post(url, {"new-name": "Drinks", "new-slug": "drinks", "new-quota": "300", "new-full_policy": "refuse"})
    drinks = Category.objects.get(slug="drinks")
    assert ok.status_code == 302 and ok["Location"] == reverse("category-edit", args=[drinks.pk])
    assert (drinks.quota, drinks.full_policy) == (300, "refuse")


def test_categories_listed_in_planner_order(client, users):
    client.force_login(users["planner"])
    html = client.get(reverse("categories")).content.decode()
    positions = [html.index(name) for name in ("People / ", "Food / ", "Places / ", "Animals / ", "Other / ")]
    assert positions == sorted(positions)


def test_edit_category_and_subcategories(client, users):
    from datasets.models import Category, Subcategory

    client.force_login(users["planner"])
    food = Category.objects.get(slug="food")
    url = reverse("category-edit", args=[food.pk])
    response = client.post(url, {"action": "category", "cat-name": "Food", "cat-slug": "food", "cat-quota": "-1",
                                 "cat-full_policy": "warn"})
    assert response.status_code == 200 and "quota" in response.context["form"].errors
    food.refresh_from_db()
    assert food.quota == 15_000
    client.post(url, {"action": "category", "cat-name": "Food!", "cat-slug": "food", "cat-quota": "20000",
                      "cat-full_policy": "refuse"})
    food.refresh_from_db()
    assert (food.name, food.quota, food.full_policy) == ("Food!", 20_000, "refuse")

    dup = client.post(url, {"action": "add-subcategory", "newsub-name": "K", "newsub-slug": "korean", "newsub-quota": "1"})
    assert dup.status_code == 200 and "slug" in dup.context["sub_form"].errors
    client.post(url, {"action": "add-subcategory", "newsub-name": "Desserts", "newsub-slug": "desserts",
                      "newsub-quota": "100"})
    desserts = food.subcategories.get(slug="desserts")
    assert desserts.quota == 100
    # Another category may reuse a subcategory slug.
    people = Category.objects.get(slug="people")
    client.post(reverse("category-edit", args=[people.pk]),
                {"action": "add-subcategory", "newsub-name": "Desserts?", "newsub-slug": "desserts", "newsub-quota": "0"})
    assert people.subcategories.filter(slug="desserts").exists()

    korean = Subcategory.objects.get(category=food, slug="korean")
    client.post(url, {"action": f"sub-{korean.pk}", f"sub{korean.pk}-name": "한식", f"sub{korean.pk}-slug": "korean",
                      f"sub{korean.pk}-quota": "6000"})
    korean.refresh_from_db()
    assert (korean.name, korean.quota) == ("한식", 6000)


def test_retire_and_unretire(client, users):
    from datasets.models import Category, Subcategory

    client.force_login(users["planner"])
    animals = Category.objects.get(slug="animals")
    client.post(reverse("category-active", args=[animals.pk]), {"active": "0"})
    animals.refresh_from_db()
    assert not animals.is_active
    assert 'data-category="animals"' not in client.get(reverse("quota-dashboard")).content.decode()
    client.post(reverse("category-active", args=[animals.pk]), {"active": "1"})
    animals.refresh_from_db()
    assert animals.is_active
    pet = Subcategory.objects.get(slug="pet")
    response = client.post(reverse("subcategory-active", args=[pet.pk]), {"active": "0"})
    assert response["Location"] == reverse("category-edit", args=[animals.pk])
    pet.refresh_from_db()
    assert not pet.is_active


def test_engineer_cannot_edit_categories(client, users):
    from datasets.models import Category

    client.force_login(users["engineer"])
    animals = Category.objects.get(slug="animals")
    assert client.post(reverse("category-active", args=[animals.pk]), {"active": "0"}).status_code == 403
    animals.refresh_from_db()
    assert animals.is_active


# ---------------------------------------------------------------- sources


def test_create_source(client, users, licence):
    from datasets.models import Source

    client.force_login(users["planner"])
    response = client.post(reverse("sources"), {"name": "Team phones", "kind": "upload", "default_licence": licence.pk})
    assert response.status_code == 302
    source = Source.objects.get(name="Team phones")
    assert source.created_by == users["planner"]
    again = client.post(reverse("sources"), {"name": "Team phones", "kind": "upload", "default_licence": licence.pk})
    assert again.status_code == 200 and "name" in again.context["form"].errors
    html = client.get(reverse("sources")).content.decode()
    assert "Team phones" in html and "CC BY-NC 4.0" in html


def test_engineer_sees_sources_but_cannot_create(client, users, licence):
    from datasets.models import Source

    client.force_login(users["engineer"])
    html = client.get(reverse("sources")).content.decode()
    assert 'name="default_licence"' not in html
    response = client.post(reverse("sources"), {"name": "X", "kind": "upload", "default_licence": licence.pk})
    assert response.status_code == 403
    assert not Source.objects.filter(name="X").exists()


def test_sources_page_shows_commercial_only_policy(client, users, settings):
    client.force_login(users["planner"])
    settings.INGEST = {**settings.INGEST, "COMMERCIAL_ONLY": True}
    assert "INGEST_COMMERCIAL_ONLY" in client.get(reverse("sources")).content.decode()
    on = client.get(reverse("sources")).context["commercial_only"]
    settings.INGEST = {**settings.INGEST, "COMMERCIAL_ONLY": False}
    off = client.get(reverse("sources")).context["commercial_only"]
    assert (on, off) == (True, False)


# ---------------------------------------------------------------- imports


def _upload(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def test_upload_files_and_zip_gives_a_report(client, users, source, django_capture_on_commit_callbacks):
    from datasets.models import Category, ImportJob

    client.force_login(users["planner"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("trip/a.jpg", make_photo(seed=31))
        zf.writestr("trip/b.jpg", make_photo(seed=32))
    food = Category.objects.get(slug="food")
    korean = food.subcategories.get(slug="korean")
    files = [_upload("one.jpg", make_photo(seed=30)), _upload("one-again.jpg", make_photo(seed=30)),
             _upload("notes.jpg", b"this is not an image"), _upload("trip.zip", buf.getvalue())]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("import-new"), {
            "source": source.pk, "category": food.pk, "subcategory": korean.pk, "mode": "files", "files": files,
        })
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("import-detail", args=[job.pk])
    job.refresh_from_db()
    assert (job.status, job.accepted, job.duplicates, job.refused) == ("done", 3, 1, 1)
    html = client.get(response["Location"]).content.decode()
    for name in ("one.jpg", "one-again.jpg", "notes.jpg", "trip/a.jpg"):
        assert name in html
    assert "outcome-duplicate" in html and "outcome-refused" in html
    refused = client.get(response["Location"], {"outcome": "refused"}).content.decode()
    assert "notes.jpg" in refused and "one-again.jpg" not in refused

    progress = client.get(reverse("import-progress", args=[job.pk])).json()
    assert progress["finished"] and progress["percent"] == 100
    assert progress["counts"] == {"accepted": 3, "duplicate": 1, "refused": 1, "warnings": 0}
    assert [i["outcome"] for i in progress["items"]].count("accepted") == 3
    dup = next(i for i in progress["items"] if i["outcome"] == "duplicate")
    assert dup["is_duplicate"] and dup["image_url"]
    later = client.get(reverse("import-progress", args=[job.pk]), {"after": 3}).json()
    assert [i["position"] for i in later["items"]] == [4]

    quotas = client.get(reverse("quota-dashboard")).content.decode()
    korean_row = quotas[quotas.index('data-subcategory="korean"'):][:800]
    assert ">3</a>" in korean_row


def test_import_with_non_commercial_licence_is_refused_whole(client, users, source):
    from datasets.models import ImportJob, Licence

    client.force_login(users["planner"])
    nc = Licence.objects.get(code="cc-by-nc-4.0")
    response = client.post(reverse("import-new"), {"source": source.pk, "licence": nc.pk, "mode": "files",
                                                   "files": [_upload("a.jpg", make_photo(seed=40))]},
                           HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert "commercial" in " ".join(response.context["form"].non_field_errors())
    assert not ImportJob.objects.exists()


def test_import_form_requires_input_for_the_chosen_mode(client, users, source):
    from datasets.models import Category, ImportJob

    client.force_login(users["planner"])
    response = client.post(reverse("import-new"), {"source": source.pk, "mode": "files"})
    assert "files" in response.context["form"].errors
    response = client.post(reverse("import-new"), {"source": source.pk, "mode": "s3"})
    assert "s3_bucket" in response.context["form"].errors
    people = Category.objects.get(slug="people")
    korean = Category.objects.get(slug="food").subcategories.get(slug="korean")
    response = client.post(reverse("import-new"), {"source": source.pk, "mode": "folder", "folder": "/tmp",
                                                   "category": people.pk, "subcategory": korean.pk})
    assert "subcategory" in response.context["form"].errors
    assert not ImportJob.objects.exists()


def test_folder_outside_allowed_roots_is_an_error(client, users, source):
    from datasets.models import ImportJob

    client.force_login(users["planner"])
    response = client.post(reverse("import-new"), {"source": source.pk, "mode": "folder", "folder": "/etc"},
                           HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert "allowed ingest root" in " ".join(response.context["form"].non_field_errors())
    assert not ImportJob.objects.exists()


def test_manifest_import(client, users, source, tmp_path, django_capture_on_commit_callbacks):
    from datasets.models import ImportJob

    client.force_login(users["planner"])
    (tmp_path / "p1.jpg").write_bytes(make_photo(seed=50))
    manifest = "path,category,subcategory,author\np1.jpg,places,landmark,Kim\nmissing.jpg,places,,Lee\n"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("import-new"), {
            "source": source.pk, "mode": "manifest", "manifest": _upload("rows.csv", manifest.encode()),
            "manifest_base": str(tmp_path)})
    assert response.status_code == 302
    job = ImportJob.objects.get()
    job.refresh_from_db()
    assert (job.kind, job.accepted, job.refused) == ("manifest", 1, 1)
    image = job.images.get()
    html = client.get(reverse("image-detail", args=[image.pk])).content.decode()
    assert "Kim" in html and image.sha256 in html and image.attribution in html


def test_image_list_filters_and_paginates(client, users, source, licence):
    from datasets import services
    from datasets.models import Image

    client.force_login(users["engineer"])
    services.ingest_one(make_photo(seed=60), source=source, category="food", subcategory="korean")
    services.ingest_one(make_photo(seed=61), source=source, category="animals", subcategory="pet")
    response = client.get(reverse("images"), {"licence": licence.code})
    assert response.context["page"].paginator.count == 2
    response = client.get(reverse("images"), {"licence": "cc0-1.0"})
    assert response.context["page"].paginator.count == 0
    response = client.get(reverse("images"), {"category": "animals"})
    pet = Image.objects.get(subcategory__slug="pet")
    assert list(response.context["page"].object_list) == [pet]
    assert response.context["page"].paginator.per_page == 60


# ---------------------------------------------------------------- API tokens


def test_token_created_shown_once_and_revoked(client, users):
    from accounts.models import ApiToken

    client.force_login(users["engineer"])
    response = client.post(reverse("tokens"), {"name": "trainer box"}, follow=True)
    key = response.context["new_key"]
    assert key and key in response.content.decode()
    token = ApiToken.objects.get(user=users["engineer"])
    assert key.startswith(token.prefix)
    assert key not in client.get(reverse("tokens")).content.decode()  # shown once
    assert client.post(reverse("tokens"), {"name": ""}).context["form"].errors
    client.post(reverse("token-revoke", args=[token.pk]))
    token.refresh_from_db()
    assert not token.is_active


def test_engineer_cannot_revoke_someone_elses_token(client, users):
    from accounts import services

    other = services.create_user("engineer2", PASSWORD, "engineer")
    token, _ = services.create_token(other, "theirs")
    client.force_login(users["engineer"])
    client.post(reverse("token-revoke", args=[token.pk]))
    token.refresh_from_db()
    assert token.is_active
