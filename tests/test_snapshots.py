"""Snapshots (issue 10, first slice): freezing, what is in, splits, keeping val/test, the diff,
the API and the command."""
from __future__ import annotations

import itertools
import re
from collections import Counter

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import translation

from datasets import services as dataset_services
from datasets.models import Snapshot, SnapshotComment, SnapshotImage, SnapshotImmutable
from datasets.selectors import snapshot_counts, snapshot_diff
from datasets.splits import SplitRow, assign_splits
from labeling import services
from labeling.models import Comment, ProjectImage
from labeling.snapshots import freeze_snapshot, labeler_pseudonym, preview
from tests.factories import fake_images, make_labelers, texts

_numbers = itertools.count()


def label_all(project, labelers, *, limit=None):
    """Every labeler submits a set on every photo they are handed (up to `limit` each)."""
    for user in labelers:
        for _ in range(limit or 10_000):
            try:
                a = services.next_assignment(project, user)
            except services.NoWorkLeft:
                break
            services.submit(a, user, texts(next(_numbers)))




@pytest.fixture
def labeled(make_project, labelers, food):
    """A project of 4 food photos, overlap 2, each photo with two submitted comment sets."""
    project = make_project(4, category=food, members=labelers[:2])
    label_all(project, labelers[:2])
    return project


def frozen_rows(snapshot):
    return (
        list(SnapshotImage.objects.filter(snapshot=snapshot).order_by("image_id").values()),
        list(SnapshotComment.objects.filter(snapshot=snapshot).order_by("comment_id").values()),
    )


# ---------------------------------------------------------------- freezing


def test_freeze_records_images_and_comments_as_they_are(labeled, labelers, users):
    snapshot = freeze_snapshot("food", projects=[labeled], created_by=users["engineer"])
    assert (snapshot.label, snapshot.image_count, snapshot.comment_count) == ("food v1", 4, 16)
    assert snapshot.min_sets == 2  # the project's overlap
    comment = Comment.objects.select_related("assignment", "comment_type").order_by("pk").first()
    row = SnapshotComment.objects.get(snapshot=snapshot, comment_id=comment.pk)
    assert (row.text, row.comment_type, row.image_id, row.split) == (
        comment.text, comment.comment_type.slug, comment.assignment.image_id,
        SnapshotImage.objects.get(snapshot=snapshot, image_id=comment.assignment.image_id).split)
    # The labeler is a stable pseudonym: no username or id, the same in every snapshot.
    assert re.fullmatch(r"[0-9a-f]{16}", row.labeler)
    assert row.labeler == labeler_pseudonym(comment.assignment.labeler_id)
    assert row.labeler not in (str(comment.assignment.labeler_id), comment.assignment.labeler.username)
    assert len(set(SnapshotComment.objects.filter(snapshot=snapshot).values_list("labeler", flat=True))) == 2
    image = SnapshotImage.objects.get(snapshot=snapshot, image_id=comment.assignment.image_id)
    assert (image.category_slug, image.licence_code, image.source_name) == ("food", "cc-by-4.0", "Test uploads")
    assert image.attribution_required and image.attribution.endswith(labeled.queue.first().image.licence.name)
    before = frozen_rows(snapshot)

    # Later edits, deletions, new comments and a retired photo change nothing frozen.
    Comment.objects.filter(pk=comment.pk).update(text="고친 코멘트입니다 정말로")
    Comment.objects.exclude(pk=comment.pk).filter(assignment__image_id=image.image_id).delete()
    newcomer = make_labelers(1, prefix="late")[0]
    services.add_member(labeled, newcomer)
    labeled.overlap = 3
    labeled.save()
    ProjectImage.objects.filter(project=labeled).update(slots_taken=2)
    label_all(labeled, [newcomer])
    dataset_services.set_image_status([image.image_id], "retired")
    assert frozen_rows(snapshot) == before
    snapshot.refresh_from_db()
    assert (snapshot.image_count, snapshot.comment_count) == (4, 16)


def test_a_frozen_snapshot_refuses_edits_and_archiving_is_the_only_change(labeled):
    snapshot = freeze_snapshot("food", projects=[labeled])
    before = frozen_rows(snapshot)
    snapshot.name = "renamed"
    with pytest.raises(SnapshotImmutable):
        snapshot.save()
    with pytest.raises(SnapshotImmutable):
        snapshot.delete()
    row = SnapshotComment.objects.filter(snapshot=snapshot).first()
    row.text = "changed"
    with pytest.raises(SnapshotImmutable):
        row.save()
    image = SnapshotImage.objects.filter(snapshot=snapshot).first()
    image.split = "train" if image.split != "train" else "test"
    with pytest.raises(SnapshotImmutable):
        image.save()
    with pytest.raises(SnapshotImmutable):
        image.delete()
    archived = dataset_services.archive_snapshot(snapshot)
    assert archived.status == "archived" and archived.archived_at is not None
    assert archived.name == "food" and frozen_rows(archived) == before
    assert dataset_services.archive_snapshot(archived).archived_at == archived.archived_at


def test_versions_count_up_per_name(labeled):
    a = freeze_snapshot("food", projects=[labeled])
    b = freeze_snapshot("food", projects=[labeled])
    c = freeze_snapshot("other", projects=[labeled])
    assert (a.version, b.version, c.version) == (1, 2, 1)
    assert b.label == "food v2"


def test_excluded_retired_and_reported_photos_are_left_out_and_k_is_respected(make_project, labelers, food):
    project = make_project(5, category=food, members=labelers[:3], overlap=3)
    label_all(project, labelers[:2])  # every photo: two sets
    third = services.next_assignment(project, labelers[2])
    services.submit(third, labelers[2], texts(next(_numbers)))  # one photo: three sets
    reported = services.report(services.next_assignment(project, labelers[2]), labelers[2], "personal_info")
    services.resolve_report(reported, "excluded")  # a planner takes it out of the project
    others = [pi.image_id for pi in ProjectImage.objects.filter(project=project).order_by("image__sha256")
              if pi.image_id not in (third.image_id, reported.image_id)]
    retired, excluded, fine = others[0], others[1], others[2]
    dataset_services.set_image_status([retired], "retired")
    dataset_services.set_image_status([excluded], "excluded")

    def frozen_ids(**kwargs):
        snapshot = freeze_snapshot("k", projects=[project], **kwargs)
        return {str(i) for i in SnapshotImage.objects.filter(snapshot=snapshot).values_list("image_id", flat=True)}

    assert frozen_ids(min_sets=2) == {str(third.image_id), str(fine)}
    assert frozen_ids() == {str(third.image_id)}  # default K: the overlap, 3
    assert preview([project], min_sets=2) == {"photos": 2, "comments": 10, "min_sets": 2}
    # Restored to the catalogue, the retired photo is in again.
    dataset_services.set_image_status([retired], "active")
    assert frozen_ids(min_sets=2) == {str(third.image_id), str(fine), str(retired)}


def test_category_and_comment_type_filters(make_project, labelers, food, people):
    project = make_project(3, category=food, members=labelers[:1], overlap=1)
    fake_images(project.queue.first().image.source, 2, category=people, start=5000)
    services.sync_project_images(project)
    label_all(project, labelers[:1])
    snapshot = freeze_snapshot("filtered", projects=[project], categories=["people"], comment_types=["reaction"])
    assert snapshot.image_count == 2 and snapshot.comment_count == 2
    assert set(SnapshotComment.objects.filter(snapshot=snapshot).values_list("comment_type", flat=True)) == {"reaction"}
    assert (snapshot.categories, snapshot.comment_types) == (["people"], ["reaction"])


def test_nothing_matching_is_refused_and_nothing_is_written(make_project, labelers):
    project = make_project(3, members=labelers[:1])
    with translation.override("en"):
        with pytest.raises(ValidationError) as refused:
            freeze_snapshot("empty", projects=[project])
        assert "Nothing matches" in " ".join(refused.value.messages)
    assert not Snapshot.objects.exists() and not SnapshotImage.objects.exists()


# ---------------------------------------------------------------- splits


@pytest.fixture
def many(make_project, labelers, food, people):
    """60 photos (30 food, 30 people), one comment set each."""
    project = make_project(30, category=food, members=labelers[:1], overlap=1, cap=1000)
    fake_images(project.queue.first().image.source, 30, category=people, start=7000)
    services.sync_project_images(project)
    label_all(project, labelers[:1])
    return project


def splits_of(snapshot) -> dict[str, str]:
    return {str(i): s for i, s in SnapshotImage.objects.filter(snapshot=snapshot).values_list("image_id", "split")}


def test_splits_are_deterministic_by_image_and_stratified(many):
    a = freeze_snapshot("s", projects=[many], seed=5)
    b = freeze_snapshot("s", projects=[many], seed=5)
    c = freeze_snapshot("s", projects=[many], seed=6)
    assert splits_of(a) == splits_of(b) and splits_of(a) != splits_of(c)
    # Stratified: each category of 30 gives 24/3/3.
    counts = {(r["split"], r["category"]): r["photos"] for r in snapshot_counts(a)}
    assert counts == {("train", "food"): 24, ("val", "food"): 3, ("test", "food"): 3,
                      ("train", "people"): 24, ("val", "people"): 3, ("test", "people"): 3}
    # By image: each photo once, in one split, and every comment in its photo's split.
    assert SnapshotImage.objects.filter(snapshot=a).count() == len(splits_of(a)) == 60
    split = splits_of(a)
    assert all(split[str(i)] == s for i, s in SnapshotComment.objects.filter(snapshot=a).values_list("image_id", "split"))


def test_absolute_counts_for_val_and_test(many):
    snapshot = freeze_snapshot("counted", projects=[many], counts={"val": 4, "test": 10})
    assert Counter(splits_of(snapshot).values()) == {"train": 46, "val": 4, "test": 10}
    with pytest.raises(ValidationError):
        freeze_snapshot("counted", projects=[many], counts={"val": 40, "test": 40})


def test_bad_split_options_are_refused(many):
    for kwargs in ({"ratios": {"train": 0.5, "val": 0.1, "test": 0.1}}, {"seed": -1},
                   {"ratios": {"train": 1, "val": 0, "test": 0}, "counts": {"val": 1, "test": 1}}):
        with pytest.raises(ValidationError):
            freeze_snapshot("bad", projects=[many], **kwargs)
    assert not Snapshot.objects.exists()


def test_same_pixels_and_duplicate_groups_never_sit_in_train():
    """The catalogue stores one row per pixel hash today, so the rule is checked on the split
    function itself (what a future catalogue of near-copies, or a kept split, hands it)."""
    rows = [SplitRow(f"id{i}", f"sha{i}", f"px{i}", "food") for i in range(40)]
    plain = assign_splits(rows, seed=3)
    test_photo = next(k for k, v in plain.items() if v == "test")
    train_photos = [k for k, v in plain.items() if v == "train"]
    twin = SplitRow("twin", "sha-twin", f"px{test_photo[2:]}", "food")
    near = train_photos[0]
    got = assign_splits([*rows, twin], seed=3, duplicate_groups=[{test_photo, near}])
    assert got["twin"] == "test" and got[near] == "test" and got[test_photo] == "test"
    # The input order does not matter.
    assert assign_splits(list(reversed([*rows, twin])), seed=3, duplicate_groups=[{near, test_photo}]) == got


def test_a_new_version_keeps_the_previous_val_and_test(many, labelers, food):
    v1 = freeze_snapshot("kept", projects=[many], seed=1)
    first = splits_of(v1)
    gone = next(k for k, v in first.items() if v == "test")
    dataset_services.set_image_status([gone], "retired")
    fake_images(many.queue.first().image.source, 10, category=food, start=9000)
    services.sync_project_images(many)
    label_all(many, labelers[:1])
    v2 = freeze_snapshot("kept", projects=[many], seed=2, keep_splits_from=v1)
    second = splits_of(v2)
    assert v2.kept_from_id == v1.pk
    for image_id, split in first.items():
        if split in ("val", "test") and image_id != gone:
            assert second[image_id] == split
    assert gone not in second
    assert all(second[k] == "train" for k in set(second) - set(first))  # new photos train

    diff = {(r["split"], r["category"]): r for r in snapshot_diff(v1, v2)}
    assert diff[("train", "food")]["photos_added"] == 10 and diff[("train", "food")]["comments_added"] == 20
    assert diff[("test", "food")]["photos_removed"] == 1 and diff[("test", "food")]["comments_removed"] == 2
    assert sum(r["photos_removed"] for r in diff.values()) == 1


# ---------------------------------------------------------------- API and command


def test_api_freeze_detail_archive_diff_and_preview(api, labeled, users):
    engineer = api("engineer")
    url = "/api/snapshots/"
    body = {"name": "api", "projects": [labeled.pk], "seed": 4, "ratios": {"train": 0.5, "val": 0.25, "test": 0.25}}
    created = engineer.post(url, body, format="json")
    assert created.status_code == 201, created.content
    v1 = created.json()
    assert (v1["label"], v1["image_count"], v1["comment_count"], v1["created_by"]) == ("api v1", 4, 16, "engineer1")
    assert {(r["split"], r["photos"]) for r in v1["splits"]} == {("train", 2), ("val", 1), ("test", 1)}
    v2 = api("planner").post(url, {**body, "keep_splits_from": v1["id"]}, format="json").json()
    assert v2["version"] == 2 and v2["kept_from"] == v1["id"]
    assert [s["id"] for s in engineer.get(url).json()["results"]] == [v2["id"], v1["id"]]
    assert engineer.get(f"{url}{v1['id']}/").json()["splits"] == v1["splits"]
    diff = engineer.get(f"{url}{v2['id']}/diff/?against={v1['id']}").json()
    assert diff["old"]["id"] == v1["id"] and all(r["photos_added"] == 0 for r in diff["rows"])
    assert engineer.get(f"{url}{v2['id']}/diff/").status_code == 400
    assert engineer.get(f"{url}{v2['id']}/diff/?against=999999").status_code == 404
    assert engineer.get(f"{url}preview/?projects={labeled.pk}&min_sets=1").json() == {
        "photos": 4, "comments": 16, "min_sets": 1}
    archived = engineer.post(f"{url}{v1['id']}/archive/")
    assert archived.status_code == 200 and archived.json()["status"] == "archived"
    assert engineer.patch(f"{url}{v1['id']}/", {"name": "x"}, format="json").status_code == 405
    assert engineer.delete(f"{url}{v1['id']}/").status_code == 405

    empty = engineer.post(url, {"name": "none", "projects": [labeled.pk], "categories": ["people"]}, format="json",
                          HTTP_ACCEPT_LANGUAGE="en")
    assert empty.status_code == 400 and "Nothing matches" in str(empty.json())
    missing = engineer.post(url, {"name": "none", "projects": [999999]}, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert missing.status_code == 400 and "No such project" in str(missing.json())
    assert Snapshot.objects.count() == 2

    labeler = api("labeler")
    for method, path in (("get", url), ("post", url), ("get", f"{url}{v1['id']}/"), ("post", f"{url}{v1['id']}/archive/"),
                         ("get", f"{url}{v2['id']}/diff/?against={v1['id']}"), ("get", f"{url}preview/?projects=1")):
        assert getattr(labeler, method)(path, body, format="json").status_code == 403, path
    assert Snapshot.objects.count() == 2


def test_freeze_snapshot_command(labeled, capsys):
    call_command("freeze_snapshot", "cli", "--project", str(labeled.pk), "--seed", "3")
    out = capsys.readouterr().out
    assert "Froze cli v1" in out and "4 photos, 16 comments" in out
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("freeze_snapshot", "cli", "--project", str(labeled.pk), "--category", "people")
