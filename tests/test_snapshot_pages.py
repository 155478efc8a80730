"""Snapshot pages (/snapshots/): who may open them, what the list, detail and diff show, the
create form's errors, count, prefill and freeze, and archiving."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import translation

from datasets.models import Snapshot, SnapshotComment, SnapshotStatus
from datasets.selectors import snapshot_counts, snapshot_stats
from labeling.models import Comment
from labeling.snapshots import freeze_snapshot
from labeling.text import count_length
from tests.conftest import ROLES
from tests.test_snapshots import label_all

ANON = "anonymous"
READERS = {"planner", "engineer", "admin"}


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def labeled(make_project, labelers, food):
    """4 food photos, overlap 2, each with two submitted comment sets (16 comments)."""
    project = make_project(4, category=food, members=labelers[:2])
    label_all(project, labelers[:2])
    return project


@pytest.fixture
def v1(labeled, users):
    return freeze_snapshot("food", projects=[labeled], created_by=users["engineer"])


def login(client, users, role="engineer"):
    client.force_login(users[role])
    return client


def text_of(response) -> str:
    """The page's visible text, tags and runs of whitespace dropped."""
    html = response.content.decode()
    html = re.sub(r"(?s)<(script|style|head)\b.*?</\1>", " ", html)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# ---------------------------------------------------------------- access


@pytest.mark.parametrize("role", [ANON, *ROLES])
def test_only_planners_engineers_and_admins_open_the_pages(client, users, v1, role):
    if role != ANON:
        login(client, users, role)
    urls = [reverse("snapshots"), reverse("snapshot-new"), reverse("snapshot-page", args=[v1.pk]),
            reverse("snapshot-page-diff", args=[v1.pk])]
    for url in urls:
        response = client.get(url)
        if role == ANON:
            assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
        elif role in READERS:
            assert response.status_code == 200, url
        else:
            assert response.status_code == 403, url
    archive = client.post(reverse("snapshot-page-archive", args=[v1.pk]))
    assert archive.status_code == (302 if role in READERS or role == ANON else 403)
    v1.refresh_from_db()
    assert (v1.status == SnapshotStatus.ARCHIVED) == (role in READERS)


@pytest.mark.parametrize("role", ROLES)
def test_the_nav_links_snapshots_for_everyone_but_labelers(client, users, role):
    login(client, users, role)
    page = client.get(reverse("home"), follow=True).content.decode()
    assert (f'href="{reverse("snapshots")}"' in page) == (role in READERS)


# ---------------------------------------------------------------- list and detail


def test_list_groups_versions_by_name_newest_first(client, users, labeled, v1):
    v2 = freeze_snapshot("food", projects=[labeled], keep_splits_from=v1, seed=3)
    other = freeze_snapshot("another", projects=[labeled])
    text = text_of(login(client, users).get(reverse("snapshots")))
    # Names in order, each name's newest version first; v2 says where its splits were kept from.
    assert text.index("another v1") < text.index("food v2") < text.index("food v1")
    html = login(client, users).get(reverse("snapshots")).content.decode()
    row = re.search(rf'<tr data-snapshot="{v2.pk}".*?</tr>', html, re.S).group(0)
    assert "food v1" in row and "Frozen" in row and ">4<" in row and ">16<" in row
    assert f'href="{reverse("snapshot-page", args=[other.pk])}"' in html
    assert f'href="{reverse("snapshot-new")}"' in html


def test_detail_shows_parameters_counts_charts_and_card(client, users, v1, django_assert_max_num_queries):
    login(client, users)
    with django_assert_max_num_queries(20):
        response = client.get(reverse("snapshot-page", args=[v1.pk]))
    text = text_of(response)
    assert "food v1" in text and "Frozen" in text
    assert "Minimum complete comment sets 2" in text and "ratios train 0.8, val 0.1, test 0.1" in text
    # Per split and category: the table's totals are the snapshot's.
    html = response.content.decode()
    foot = re.search(r"<tfoot>.*?</tfoot>", html, re.S).group(0)
    assert re.findall(r">(\d+)<", foot)[-2:] == ["4", "16"]
    # Charts: per category, per comment type (each of the two types 8 comments = 50%), lengths, labelers.
    types = re.search(r'id="chart-types".*?</figure>', html, re.S).group(0)
    assert types.count("(50.0%)") == 2
    assert 'id="lengths"' in html and "Length of reaction comments" in text
    labelers = re.search(r'id="chart-labelers".*?</figure>', html, re.S).group(0)
    ids = set(SnapshotComment.objects.filter(snapshot=v1).values_list("labeler", flat=True))
    assert all(i in labelers for i in ids) and len(ids) == 2
    # The card, the export placeholder, and the ways on.
    assert "Dataset card" in text and "4 photos with 16 comments by 2 labelers." in text
    assert "Start export" in text  # the export section (datasets/_snapshot_exports.html)
    assert f'href="{reverse("snapshot-new")}?from={v1.pk}"' in html
    assert f'href="{reverse("snapshot-page-diff", args=[v1.pk])}"' in html


def test_length_histograms_count_characters_without_spaces(labeled, v1):
    stats = snapshot_stats(v1)
    texts = SnapshotComment.objects.filter(snapshot=v1, comment_type="reaction").values_list("text", flat=True)
    expected = sorted(count_length(t) for t in texts)
    h = stats["lengths"]["reaction"]
    assert (h["count"], h["min"], h["max"]) == (len(expected), expected[0], expected[-1])
    assert sum(b["n"] for b in h["buckets"]) == len(expected)
    assert stats["lengths"] == snapshot_stats(v1, length=count_length)["lengths"]  # Korean text: the same


def test_length_buckets_cover_shortest_to_longest_in_round_widths():
    from collections import Counter

    from datasets.selectors import _histogram

    h = _histogram(Counter({3: 1, 40: 2, 150: 1}))
    assert (h["min"], h["max"], h["median"], h["mean"], h["width"]) == (3, 150, 40, 58.2, 20)
    assert [(b["low"], b["high"], b["n"]) for b in h["buckets"]][:3] == [(0, 19, 1), (20, 39, 0), (40, 59, 2)]
    assert h["buckets"][-1]["high"] >= 150 and len(h["buckets"]) <= 12
    assert [b["width"] for b in h["buckets"] if b["n"]] == [50.0, 100.0, 50.0]
    assert _histogram(Counter())["buckets"] == []


def test_stats_agree_with_the_split_counts(labeled, v1, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        stats = snapshot_stats(v1)
    assert [{k: r[k] for k in ("split", "category", "photos", "comments")} for r in stats["splits"]] == \
        snapshot_counts(v1)
    assert (stats["photos"], stats["comments"], stats["labeler_count"]) == (4, 16, 2)
    assert stats["licences"] == [{"licence_code": "cc-by-4.0", "attribution_required": True, "n": 4}]


def test_labelers_past_the_top_are_one_row(labeled, v1):
    stats = snapshot_stats(v1, top_labelers=1)
    assert [r["others"] for r in stats["labelers"]] == [0, 1]
    assert sum(r["n"] for r in stats["labelers"]) == 16


# ---------------------------------------------------------------- the create form


def form_data(project, **extra):
    data = {"name": "food", "projects": [project.pk], "seed": "0", "split_mode": "ratios",
            "train": "0.8", "val": "0.1", "test": "0.1", "action": "freeze"}
    data.update(extra)
    return data


def test_create_form_freezes_and_opens_the_snapshot(client, users, labeled):
    login(client, users, "planner")
    page = client.get(reverse("snapshot-new")).content.decode()
    assert "page waits" in page or "while you wait" in page
    assert re.search(r"Overlap:.*?2", page, re.S)
    response = client.post(reverse("snapshot-new"), form_data(labeled))
    snapshot = Snapshot.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("snapshot-page", args=[snapshot.pk])
    assert (snapshot.label, snapshot.image_count, snapshot.comment_count) == ("food v1", 4, 16)
    assert snapshot.created_by == users["planner"]
    assert "food v1 frozen: 4 photos, 16 comments." in text_of(client.get(response["Location"]))


def test_count_button_shows_what_would_be_included_and_freezes_nothing(client, users, labeled):
    login(client, users)
    response = client.post(reverse("snapshot-new"), form_data(labeled, action="count"))
    assert response.status_code == 200
    assert "4 photos, 16 comments (at least 2 complete comment sets a photo)" in text_of(response)
    assert not Snapshot.objects.exists()


@pytest.mark.parametrize("change, field_error", [
    ({"name": ""}, "This field is required."),
    ({"projects": []}, "This field is required."),
    ({"train": "0.9"}, "they must add up to 1"),
    ({"split_mode": "counts", "val_count": "", "test_count": "1"}, "Give a number of photos"),
    ({"split_mode": "counts", "val_count": "3", "test_count": "3"}, "fewer than the val and test counts ask for"),
    ({"min_sets": "3"}, "Nothing matches"),
    ({"comment_types": ["nope"]}, "Select a valid choice"),
    ({"seed": "-1"}, "greater than or equal to 0"),
])
def test_create_form_shows_errors_and_freezes_nothing(client, users, labeled, change, field_error):
    login(client, users)
    response = client.post(reverse("snapshot-new"), form_data(labeled, **change))
    assert response.status_code == 200
    assert field_error in text_of(response)
    assert not Snapshot.objects.exists()


def test_comment_type_of_another_project_is_refused(client, users, labeled, make_project, labelers):
    other = make_project(1, members=labelers[:1])
    other.comment_types.filter(slug="reaction").update(slug="other-type")
    login(client, users)
    response = client.post(reverse("snapshot-new"), form_data(labeled, comment_types=["other-type"]))
    assert "Not a comment type of the chosen projects: other-type." in text_of(response)
    assert not Snapshot.objects.exists()


def test_next_version_prefills_parameters_and_keeps_val_and_test(client, users, labeled, food):
    v1 = freeze_snapshot("food", projects=[labeled], categories=["food"], comment_types=["reaction"], seed=42,
                         counts={"val": 1, "test": 1})
    login(client, users)
    response = client.get(reverse("snapshot-new") + f"?from={v1.pk}")
    form = response.context["form"]
    assert form["name"].value() == "food" and form["seed"].value() == 42
    assert [int(p) for p in form["projects"].value()] == [labeled.pk]
    assert form["categories"].value() == ["food"] and form["comment_types"].value() == ["reaction"]
    assert (form["split_mode"].value(), form["val_count"].value(), form["test_count"].value()) == ("counts", 1, 1)
    assert str(form["keep_splits_from"].value()) == str(v1.pk)
    assert "Keep val and test photos of food v1" in text_of(response)
    assert "Next version of food" in text_of(response)
    # Submitting the prefilled form freezes v2 with v1's val and test photos where they were.
    data = {"name": "food", "projects": [labeled.pk], "categories": ["food"], "comment_types": ["reaction"],
            "min_sets": "2", "seed": "42", "split_mode": "counts", "val_count": "1", "test_count": "1",
            "keep_splits_from": str(v1.pk), "action": "freeze"}
    assert client.post(reverse("snapshot-new"), data).status_code == 302
    v2 = Snapshot.objects.get(version=2)
    assert v2.kept_from == v1
    assert set(v1.images.exclude(split="train").values_list("image_id", "split")) <= \
        set(v2.images.values_list("image_id", "split"))


def test_a_bad_from_is_an_empty_form(client, users, labeled):
    login(client, users)
    for bad in ("999999", "x", "9" * 40):
        response = client.get(reverse("snapshot-new") + f"?from={bad}")
        assert response.status_code == 200 and response.context["form"]["name"].value() in (None, "")


# ---------------------------------------------------------------- archive and diff


def test_archive_marks_the_snapshot_and_hides_the_button(client, users, v1):
    login(client, users)
    assert client.get(reverse("snapshot-page-archive", args=[v1.pk])).status_code == 405
    response = client.post(reverse("snapshot-page-archive", args=[v1.pk]), follow=True)
    v1.refresh_from_db()
    assert v1.status == SnapshotStatus.ARCHIVED and v1.archived_at
    text = text_of(response)
    assert "food v1 archived." in text and "Archived" in text
    assert 'id="archive"' not in response.content.decode()
    assert SnapshotComment.objects.filter(snapshot=v1).count() == 16


def test_diff_shows_what_was_added_and_removed(client, users, labeled, labelers, v1):
    Comment.objects.filter(pk=SnapshotComment.objects.filter(snapshot=v1).first().comment_id).delete()
    v2 = freeze_snapshot("food", projects=[labeled], keep_splits_from=v1)
    other = freeze_snapshot("other", projects=[labeled])
    login(client, users)
    # Without ?against: the version before.
    response = client.get(reverse("snapshot-page-diff", args=[v2.pk]))
    assert response.context["other"] == v1
    text = text_of(response)
    assert "From food v1 to food v2" in text
    assert re.search(r"−1 Comments removed", text) and re.search(r" 0 Comments added", text)
    # The select offers the same name's versions first, then the others.
    html = response.content.decode()
    assert html.index("Versions of food") < html.index(f'value="{v1.pk}"') < html.index("Other snapshots") \
        < html.index(f'value="{other.pk}"')
    same = client.get(reverse("snapshot-page-diff", args=[v2.pk]) + f"?against={v2.pk}")
    assert same.status_code == 400  # not a choice
    response = client.get(reverse("snapshot-page-diff", args=[v1.pk]) + f"?against={other.pk}")
    assert response.status_code == 200 and "From other v1 to food v1" in text_of(response)


def test_diff_of_a_lone_snapshot_says_there_is_nothing_to_compare(client, users, v1):
    response = login(client, users).get(reverse("snapshot-page-diff", args=[v1.pk]))
    assert "There is no other snapshot to compare with yet." in text_of(response)
