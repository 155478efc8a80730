"""The comment browser: a project's comments filtered, searched (Korean, NFC) and ordered, on the
planner page, in its CSV/JSONL download and through the API; the photo page's comment sets."""
from __future__ import annotations

import csv
import datetime as dt
import importlib
import io
import json
import unicodedata
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.db import connection
from django.db.models import F
from django.urls import reverse
from django.utils import timezone, translation

from accounts import services as accounts
from labeling import selectors, services
from labeling.models import Comment
from labeling.selectors import CommentFilters
from tests.conftest import make_photo


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def photos(db, source):
    from datasets import services as datasets

    return [datasets.ingest_one(make_photo(seed=seed, width=160, height=120), source=source, category=cat).image
            for seed, cat in enumerate(["food", "food", "people"], start=700)]


@pytest.fixture
def labelers(db):
    return [accounts.create_user(name, "pw-long-enough-1", "labeler") for name in ("minji", "junho")]


@pytest.fixture
def project(db, photos, labelers, users):
    p = services.create_project("Comment browser", created_by=users["planner"], overlap=2)
    services.sync_project_images(p)
    for user in labelers:
        services.add_member(p, user)
    return p


def submit(project, user, reaction, specific):
    a = services.next_assignment(project, user)
    services.submit(a, user, {"reaction": reaction, "specific": specific})
    return a


@pytest.fixture
def world(project, labelers):
    """minji: two sets, junho: one; texts chosen to tell the filters apart."""
    minji, junho = labelers
    a1 = submit(project, minji, "고양이 너무 귀엽다", "창가에 앉은 고양이 표정이 진짜 웃겨요")
    a2 = submit(project, minji, "=HYPERLINK(1) 와 맛있겠다", "국물이 진하고 면발이 쫄깃해 보여요")
    a3 = submit(project, junho, "@ 대박 사진이다", "배경에 보이는 바다 색이 정말 예뻐요")
    return {"minji": [a1, a2], "junho": [a3]}


def texts(qs):
    return sorted(c.text for c in qs)


# ---------------------------------------------------------------- selectors


def test_filters_by_labeler_type_category_and_length(project, world, photos):
    all_ = selectors.project_comments(project)
    assert all_.count() == 6
    minji = selectors.project_comments(project, CommentFilters(labeler="minji"))
    assert {c.assignment.labeler.username for c in minji} == {"minji"} and minji.count() == 4
    reactions = selectors.project_comments(project, CommentFilters(comment_type="reaction"))
    assert texts(reactions) == sorted(["고양이 너무 귀엽다", "=HYPERLINK(1) 와 맛있겠다", "@ 대박 사진이다"])
    people = selectors.project_comments(project, CommentFilters(category="people"))
    people_sets = {c.assignment_id for c in people}
    assert all(c.assignment.image.category.slug == "people" for c in people)
    food = selectors.project_comments(project, CommentFilters(category="food"))
    assert people_sets.isdisjoint({c.assignment_id for c in food}) and food.count() + people.count() == 6
    # "고양이 너무 귀엽다" counts 8 characters (spaces not counted, as the rules count).
    short = selectors.project_comments(project, CommentFilters(max_length=8))
    assert "고양이 너무 귀엽다" in texts(short) and all(c.length <= 8 for c in short)
    long_ = selectors.project_comments(project, CommentFilters(min_length=9, max_length=14))
    assert all(9 <= c.length <= 14 for c in long_) and "고양이 너무 귀엽다" not in texts(long_)


def test_filters_by_guideline_version_and_dates(project, world):
    Comment.objects.filter(assignment=world["junho"][0]).update(
        guideline_version=3, created_at=timezone.now() - dt.timedelta(days=10))
    v3 = selectors.project_comments(project, CommentFilters(guideline_version=3))
    assert v3.count() == 2
    today = timezone.localdate()
    recent = selectors.project_comments(project, CommentFilters(since=today - dt.timedelta(days=1)))
    assert recent.count() == 4
    old = selectors.project_comments(project, CommentFilters(until=today - dt.timedelta(days=9)))
    assert texts(old) == sorted(["@ 대박 사진이다", "배경에 보이는 바다 색이 정말 예뻐요"])
    # `until` includes its whole day.
    assert selectors.project_comments(project, CommentFilters(since=today, until=today)).count() == 4


def test_search_finds_korean_substrings_whatever_the_normal_form(project, world):
    found = selectors.project_comments(project, CommentFilters(q="고양이"))
    assert texts(found) == sorted(["고양이 너무 귀엽다", "창가에 앉은 고양이 표정이 진짜 웃겨요"])
    # The query typed decomposed (NFD jamo, as some macOS input gives) finds the NFC text.
    nfd_query = unicodedata.normalize("NFD", "맛있겠")
    assert nfd_query != "맛있겠"
    assert texts(selectors.project_comments(project, CommentFilters(q=nfd_query))) == ["=HYPERLINK(1) 와 맛있겠다"]
    # A row stored decomposed (written before the service normalised) is stored in NFC by the
    # comment-search migration, and then found.
    row = Comment.objects.get(text="배경에 보이는 바다 색이 정말 예뻐요")
    Comment.objects.filter(pk=row.pk).update(text=unicodedata.normalize("NFD", row.text))
    comment_search_migration().nfc_texts(django_apps, SimpleNamespace(connection=connection))
    assert Comment.objects.get(pk=row.pk).text == row.text
    assert [c.pk for c in selectors.project_comments(project, CommentFilters(q="바다 색"))] == [row.pk]
    # One or two characters (no trigram to look up on PostgreSQL) are found too.
    assert texts(selectors.project_comments(project, CommentFilters(q="진하"))) == ["국물이 진하고 면발이 쫄깃해 보여요"]
    assert selectors.project_comments(project, CommentFilters(q="hY")).count() == 1
    # Case-insensitive, and % or _ in the query are plain characters.
    assert selectors.project_comments(project, CommentFilters(q="hyperlink")).count() == 1
    assert selectors.project_comments(project, CommentFilters(q="%")).count() == 0


def comment_search_migration():
    """labeling/migrations/NNNN_comment_search.py, whatever its number."""
    path = next((Path(settings.BASE_DIR) / "labeling" / "migrations").glob("*_comment_search.py"))
    return importlib.import_module(f"labeling.migrations.{path.stem}")


def test_orders(project, world):
    lengths = [c.length for c in selectors.project_comments(project, order="longest")]
    assert lengths == sorted(lengths, reverse=True)
    assert [c.length for c in selectors.project_comments(project, order="shortest")] == sorted(lengths)
    names = [c.assignment.labeler.username for c in selectors.project_comments(project, order="labeler")]
    assert names == ["junho"] * 2 + ["minji"] * 4
    newest = list(selectors.project_comments(project, order="newest"))
    assert newest == list(reversed(list(selectors.project_comments(project, order="oldest"))))


def test_other_projects_comments_stay_out(project, world, users, labelers, photos):
    other = services.create_project("Other", created_by=users["planner"])
    services.sync_project_images(other)
    services.add_member(other, labelers[0])
    submit(other, labelers[0], "다른 프로젝트 반응", "다른 프로젝트의 구체적인 코멘트예요")
    assert selectors.project_comments(project, CommentFilters(q="다른")).count() == 0
    assert selectors.project_comments(other).count() == 2


# ---------------------------------------------------------------- the page


def page(client, project, **params):
    return client.get(reverse("project-comments", args=[project.pk]), params)


@pytest.mark.parametrize("role,status", [("planner", 200), ("engineer", 200), ("admin", 200), ("labeler", 403)])
def test_page_access(client, users, project, world, role, status):
    client.force_login(users[role])
    assert page(client, project).status_code == status
    url = reverse("project-comments-export", args=[project.pk])
    assert client.get(url, {"format": "csv"}).status_code == status


def test_page_anonymous_goes_to_login_and_unknown_project_is_404(client, users, project):
    assert page(client, project).status_code == 302
    client.force_login(users["planner"])
    assert client.get(reverse("project-comments", args=[987654])).status_code == 404


def test_page_lists_filters_and_links_each_row_to_its_photo(client, users, project, world):
    client.force_login(users["engineer"])
    resp = page(client, project)
    html = resp.content.decode()
    assert "6 comments" in html
    for a in world["minji"] + world["junho"]:
        assert reverse("image-detail", args=[a.image_id]) in html
    assert "고양이 너무 귀엽다" in html and 'href="?labeler=junho"' in html
    # The tab is there for engineers, who see no planner tabs.
    assert reverse("project-comments", args=[project.pk]) in html
    resp = page(client, project, labeler="junho", q="바다")
    html = resp.content.decode()
    assert "1 comment" in html and "배경에 보이는 바다" in html and "고양이" not in html.split('id="comments"')[1]
    assert 'id="download-csv"' in html and "labeler=junho" in html.split('id="download-csv"')[1].split(">")[0]


def test_page_says_what_is_wrong_with_a_filter(client, users, project, world):
    client.force_login(users["planner"])
    resp = page(client, project, min_length="20", max_length="3", since="not a date")
    html = resp.content.decode()
    assert resp.status_code == 200
    assert "Give a length to that is not below the length from." in html
    assert "Enter a valid date." in html and 'data-comment=' not in html


def test_page_count_is_capped(client, users, project, world, monkeypatch):
    from labeling import comment_views

    monkeypatch.setattr(comment_views, "COUNT_CAP", 4)
    monkeypatch.setattr(comment_views, "COMMENTS_PER_PAGE", 2)
    client.force_login(users["planner"])
    html = page(client, project).content.decode()
    assert "more than 4 comments" in html and html.count("data-comment=") == 2
    html = page(client, project, page="2").content.decode()
    assert "more than 4 comments" in html and html.count("data-comment=") == 2
    assert "Page 2 of 2" in html  # the pager reaches the first 4
    # Every match on the first page: the exact number, whatever the cap.
    assert "1 comment" in page(client, project, q="바다").content.decode()


def test_labelers_page_links_each_labeler_to_their_comments(client, users, project, world):
    client.force_login(users["planner"])
    html = client.get(reverse("project-labelers", args=[project.pk])).content.decode()
    assert f'{reverse("project-comments", args=[project.pk])}?labeler=minji' in html
    html = client.get(reverse("project-detail", args=[project.pk])).content.decode()
    assert f'{reverse("project-comments", args=[project.pk])}?labeler=junho' in html


def test_photo_page_shows_every_comment_set(client, users, project, world):
    client.force_login(users["engineer"])
    a = world["minji"][0]
    html = client.get(reverse("image-detail", args=[a.image_id])).content.decode()
    assert 'id="image-comments"' in html
    section = html.split('id="image-comments"')[1]
    assert "고양이 너무 귀엽다" in section and "minji" in section and project.name in section
    assert "짧은 반응" in section  # the comment type's name
    assert f'data-set="{a.pk}"' in section


def test_photo_page_without_comments_says_so(client, users, photos):
    client.force_login(users["planner"])
    html = client.get(reverse("image-detail", args=[photos[0].pk])).content.decode()
    assert "No labeler has commented on this photo yet." in html


# ---------------------------------------------------------------- downloads


def download(client, project, **params):
    resp = client.get(reverse("project-comments-export", args=[project.pk]), params)
    assert resp.status_code == 200, resp.content[:300]
    return resp, b"".join(resp.streaming_content).decode("utf-8")


def test_csv_download_is_excel_ready_and_safe_from_formulas(client, users, project, world):
    client.force_login(users["planner"])
    resp, body = download(client, project, format="csv", labeler="minji")
    assert resp["Content-Type"].startswith("text/csv") and "attachment" in resp["Content-Disposition"]
    assert body.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(body[1:])))
    assert len(rows) == 4 and {r["labeler"] for r in rows} == {"minji"}
    assert "'=HYPERLINK(1) 와 맛있겠다" in {r["text"] for r in rows}
    assert not any(r["text"].startswith(("=", "+", "-", "@")) for r in rows)
    _, body = download(client, project, format="csv", labeler="junho", comment_type="reaction")
    assert [r["text"] for r in csv.DictReader(io.StringIO(body[1:]))] == ["'@ 대박 사진이다"]


def test_jsonl_download_has_the_filtered_rows_as_written(client, users, project, world):
    client.force_login(users["engineer"])
    resp, body = download(client, project, format="jsonl", q="맛있")
    assert resp["Content-Type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in body.splitlines()]
    assert [r["text"] for r in rows] == ["=HYPERLINK(1) 와 맛있겠다"]
    assert rows[0]["labeler"] == "minji" and rows[0]["comment_type"] == "reaction" and rows[0]["category"] == "food"


def test_download_of_an_unknown_format_is_404(client, users, project):
    client.force_login(users["planner"])
    assert client.get(reverse("project-comments-export", args=[project.pk]), {"format": "xlsx"}).status_code == 404


# ---------------------------------------------------------------- API


def api_url(project, export=False):
    return reverse("api:project-comment-export" if export else "api:project-comment-list", args=[project.pk])


def test_api_lists_filters_orders_and_pages(api, project, world):
    c = api("engineer")
    data = c.get(api_url(project)).json()
    assert data["count"] == 6 and len(data["results"]) == 6
    row = data["results"][0]
    assert set(row) >= {"id", "text", "length", "comment_type", "labeler", "image", "category", "guideline_version",
                        "created_at"}
    data = c.get(api_url(project), {"labeler": "minji", "order": "shortest", "page_size": 2}).json()
    assert data["count"] == 4 and len(data["results"]) == 2 and data["next"]
    assert [r["length"] for r in data["results"]] == sorted(r["length"] for r in data["results"])
    data = c.get(api_url(project), {"q": unicodedata.normalize("NFD", "고양이"), "comment_type": "specific"}).json()
    assert [r["text"] for r in data["results"]] == ["창가에 앉은 고양이 표정이 진짜 웃겨요"]


def test_api_refuses_bad_filters_with_400(api, project, world):
    resp = api("planner").get(api_url(project), {"min_length": "x", "order": "random", "comment_type": "nope"})
    assert resp.status_code == 400
    assert set(resp.json()) == {"min_length", "order", "comment_type"}


def test_api_labelers_are_refused(api, project, world):
    assert api("labeler").get(api_url(project)).status_code == 403
    assert api("labeler").get(api_url(project, export=True)).status_code == 403
    assert api().get(api_url(project)).status_code == 401


def test_api_export_csv_and_jsonl(api, project, world):
    c = api("planner")
    resp = c.get(api_url(project, export=True), {"format": "jsonl", "labeler": "junho"})
    assert resp.status_code == 200
    rows = [json.loads(x) for x in b"".join(resp.streaming_content).decode().splitlines()]
    assert {r["labeler"] for r in rows} == {"junho"} and len(rows) == 2
    resp = c.get(api_url(project, export=True))
    body = b"".join(resp.streaming_content).decode()
    assert resp["Content-Type"].startswith("text/csv") and body.startswith("\ufeffcomment_id,")
    assert c.get(api_url(project, export=True), {"format": "xml"}).status_code == 400


def test_postgresql_search_uses_the_trigram_index(project, world):
    """On PostgreSQL the migration made `comment_text_trgm`, and a search of three or more
    characters can be answered from it (SQLite has no such index and scans)."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'comment_text_trgm'")
        (indexdef,) = cursor.fetchone()
        assert "gin_trgm_ops" in indexdef
        # The tables are tiny: take scans that need no index condition off the table.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        for q in ("고양이", "Hyperlink"):
            plan = Comment.objects.filter(selectors.ContainsText(F("text"), q)).order_by().values("id").explain()
            assert "comment_text_trgm" in plan, plan
        # Two syllables hold no trigram: reading the whole index would be slower than the table.
        plan = Comment.objects.filter(selectors.ContainsText(F("text"), "바다")).order_by().values("id").explain()
        assert "comment_text_trgm" not in plan, plan
