"""The assignment engine's rules one by one, and the labeling selectors.

Runs on SQLite by default and on PostgreSQL with DATABASE_URL=postgres://...
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import services as accounts
from datasets.models import Category, Image, Source, Subcategory
from datasets.selectors import quota_dashboard
from labeling import selectors, services
from labeling.models import Assignment, AssignmentStatus, Comment, ProjectImage
from tests.factories import GOOD, fake_images, texts


def slots(project):
    return sorted(ProjectImage.objects.filter(project=project).values_list("slots_taken", flat=True))


# --- Projects and the queue -----------------------------------------------------------------

def test_default_project_has_the_two_known_comment_types(make_project):
    project = make_project(1)
    types = list(project.comment_types.values_list("slug", "min_length"))
    assert types == [("reaction", 3), ("specific", 10)]
    assert (project.overlap, project.cap_per_labeler, project.lease_minutes) == (2, 300, 30)


def test_sync_takes_images_by_category_or_subcategory_and_source(db, source, licence, food):
    other_source = Source.objects.create(kind="upload", name="Other", default_licence=licence)
    people = Category.objects.get(slug="people")
    sub = Subcategory.objects.filter(category=people).first()
    food_imgs = fake_images(source, 3, category=food)
    sub_imgs = fake_images(source, 2, category=people, subcategory=sub, start=10)
    fake_images(source, 2, category=people, start=20)  # people without that subcategory
    fake_images(other_source, 2, category=food, start=30)  # right category, wrong source

    project = services.create_project("filters", categories=[food], subcategories=[sub], sources=[source])
    assert services.sync_project_images(project) == (5, 0)
    queued = set(ProjectImage.objects.filter(project=project).values_list("image_id", flat=True))
    assert queued == {i.pk for i in food_imgs + sub_imgs}
    assert services.sync_project_images(project) == (0, 0)  # running it again adds nothing

    # Narrowing the filters drops untouched photos but keeps one somebody already has.
    labeler = accounts.create_user("narrow", "pw-long-enough-1", "labeler")
    services.add_member(project, labeler)
    project.subcategories.clear()
    leased = services.next_assignment(project, labeler)
    added, removed = services.sync_project_images(project)
    assert added == 0
    remaining = set(ProjectImage.objects.filter(project=project).values_list("image_id", flat=True))
    expected = {i.pk for i in food_imgs} | ({leased.image_id} if leased.image_id not in {i.pk for i in food_imgs} else set())
    assert remaining == expected and removed == 5 - len(expected)


# --- The engine -----------------------------------------------------------------------------

def test_own_unexpired_lease_comes_first(make_project, labelers):
    project = make_project(3)
    first = services.next_assignment(project, labelers[0])
    again = services.next_assignment(project, labelers[0])
    assert again.pk == first.pk
    assert Assignment.objects.filter(labeler=labelers[0]).count() == 1
    assert slots(project) == [0, 0, 1]


def test_cap_counts_leases_and_submissions(make_project, labelers):
    project = make_project(5)
    member = services.add_member(project, labelers[0], cap_override=2)
    assert member.cap == 2
    for n in range(2):
        a = services.next_assignment(project, labelers[0])
        services.submit(a, labelers[0], texts(n))
    with pytest.raises(services.CapReached):
        services.next_assignment(project, labelers[0])
    # Another labeler keeps the project cap.
    assert services.next_assignment(project, labelers[1]).status == AssignmentStatus.LEASED


def test_cap_of_one_with_an_open_lease_gives_the_same_lease(make_project, labelers):
    project = make_project(3, cap=1)
    a = services.next_assignment(project, labelers[0])
    assert services.next_assignment(project, labelers[0]).pk == a.pk
    services.skip(a, labelers[0])  # a skip does not count against the cap
    b = services.next_assignment(project, labelers[0])
    services.submit(b, labelers[0], texts(1))
    with pytest.raises(services.CapReached):
        services.next_assignment(project, labelers[0])


def test_never_more_than_overlap_labelers_per_photo(make_project, labelers):
    project = make_project(1, overlap=2)
    a = services.next_assignment(project, labelers[0])
    b = services.next_assignment(project, labelers[1])
    assert a.image_id == b.image_id
    with pytest.raises(services.NoWorkLeft):
        services.next_assignment(project, labelers[2])
    services.submit(a, labelers[0], texts(1))
    services.submit(b, labelers[1], texts(2))
    with pytest.raises(services.NoWorkLeft):
        services.next_assignment(project, labelers[2])
    pi = ProjectImage.objects.get(project=project)
    assert (pi.slots_taken, pi.submitted_count) == (2, 2)


def test_started_photos_are_preferred(make_project, labelers):
    project = make_project(20, overlap=3)
    a = services.next_assignment(project, labelers[0])
    b = services.next_assignment(project, labelers[1])
    c = services.next_assignment(project, labelers[2])
    assert a.image_id == b.image_id == c.image_id
    # That photo is full: the next labeler opens a new one.
    d = services.next_assignment(project, labelers[3])
    assert d.image_id != a.image_id


def test_the_same_photo_never_comes_twice_to_one_person(make_project, labelers):
    project = make_project(2, overlap=2)
    seen = []
    for n in range(2):
        a = services.next_assignment(project, labelers[0])
        seen.append(a.image_id)
        services.submit(a, labelers[0], texts(n))
    assert len(set(seen)) == 2
    with pytest.raises(services.NoWorkLeft):
        services.next_assignment(project, labelers[0])
    # And the database refuses a second row for the same (project, image, labeler).
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(project=project, image_id=seen[0], labeler=labelers[0],
                                  leased_at=timezone.now(), expires_at=timezone.now())


def test_skipped_and_reported_photos_never_return_and_free_the_slot(make_project, labelers):
    project = make_project(2, overlap=1)
    a = services.next_assignment(project, labelers[0])
    services.skip(a, labelers[0])
    b = services.next_assignment(project, labelers[0])
    assert b.image_id != a.image_id
    with pytest.raises(ValidationError):
        services.report(b, labelers[0], "boring")
    services.report(b, labelers[0], "personal_info", "  a phone number on the sign ")
    b.refresh_from_db()
    assert (b.status, b.report_reason, b.report_note) == ("reported", "personal_info", "a phone number on the sign")
    with pytest.raises(services.NoWorkLeft):
        services.next_assignment(project, labelers[0])
    # The slots are free for others.
    assert slots(project) == [0, 0]
    assert services.next_assignment(project, labelers[1]).image_id in {a.image_id, b.image_id}
    # A skipped photo cannot be submitted afterwards.
    with pytest.raises(services.AssignmentClosed):
        services.submit(a, labelers[0], texts(1))


def expire(assignment):
    Assignment.objects.filter(pk=assignment.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def test_an_expired_lease_is_freed_for_others(make_project, labelers):
    project = make_project(1, overlap=1)
    a = services.next_assignment(project, labelers[0])
    with pytest.raises(services.NoWorkLeft):
        services.next_assignment(project, labelers[1])
    expire(a)
    b = services.next_assignment(project, labelers[1])
    assert b.image_id == a.image_id
    a.refresh_from_db()
    assert a.status == AssignmentStatus.EXPIRED and slots(project) == [1]
    # The first labeler comes back too late: the photo is taken.
    with pytest.raises(services.LeaseLost):
        services.submit(a, labelers[0], texts(1))
    assert not Comment.objects.filter(assignment=a).exists()
    services.submit(b, labelers[1], texts(2))
    assert slots(project) == [1]


def test_submit_on_an_expired_lease_nobody_took_still_counts(make_project, labelers):
    project = make_project(1, overlap=1)
    a = services.next_assignment(project, labelers[0])
    expire(a)
    assert services.release_expired_leases(project) == 1
    assert slots(project) == [0]
    comments = services.submit(a, labelers[0], texts(1))
    assert len(comments) == 2 and a.status == AssignmentStatus.SUBMITTED
    assert slots(project) == [1]


def test_an_expired_lease_of_mine_can_come_back_to_me(make_project, labelers):
    project = make_project(1, overlap=1)
    a = services.next_assignment(project, labelers[0])
    expire(a)
    again = services.next_assignment(project, labelers[0])
    assert again.pk == a.pk and again.status == AssignmentStatus.LEASED and again.expires_at > timezone.now()


def test_submit_is_idempotent(make_project, labelers):
    project = make_project(1)
    a = services.next_assignment(project, labelers[0])
    first = services.submit(a, labelers[0], GOOD, idempotency_key="k1")
    second = services.submit(a, labelers[0], GOOD, idempotency_key="k1")
    assert [c.pk for c in first] == [c.pk for c in second]
    assert Comment.objects.filter(assignment=a).count() == 2
    pi = ProjectImage.objects.get(project=project)
    assert (pi.slots_taken, pi.submitted_count) == (1, 1)
    assert {c.comment_type.slug: (c.text, c.length) for c in first} == {
        "reaction": (GOOD["reaction"], 7), "specific": (GOOD["specific"], 17)
    }


def test_rule_violations_store_nothing_and_say_why_per_type(make_project, labelers):
    project = make_project(2)
    a = services.next_assignment(project, labelers[0])
    with pytest.raises(services.SubmissionRejected) as e:
        services.submit(a, labelers[0], {"reaction": "ㅋㅋㅋ", "specific": "짧아요"})
    assert e.value.codes == {"reaction": ["jamo_or_emoji_only"], "specific": ["too_short"]}
    assert "10" in e.value.message_dict["specific"][0]  # the minimum, in the active language
    with pytest.raises(services.SubmissionRejected) as e:
        services.submit(a, labelers[0], {"reaction": "좋네요", "extra": "뭐지"})
    assert e.value.codes == {"extra": ["unknown_type"], "specific": ["required"]}
    a.refresh_from_db()
    assert a.status == AssignmentStatus.LEASED and not Comment.objects.exists()
    assert ProjectImage.objects.get(project=project, image_id=a.image_id).submitted_count == 0

    # The own-repeat rule looks at this labeler's earlier comments in the project.
    services.submit(a, labelers[0], GOOD)
    b = services.next_assignment(project, labelers[0])
    with pytest.raises(services.SubmissionRejected) as e:
        services.submit(b, labelers[0], {"reaction": "새로운 반응", "specific": GOOD["specific"] + "!"})
    assert e.value.codes == {"specific": ["own_repeat"]}
    # ...and not at other labelers' comments.
    c = services.next_assignment(project, labelers[1])
    services.submit(c, labelers[1], GOOD)


def test_the_boundary_of_each_type(make_project, labelers):
    project = make_project(2)
    a = services.next_assignment(project, labelers[0])
    with pytest.raises(services.SubmissionRejected) as e:
        services.submit(a, labelers[0], {"reaction": "좋아", "specific": "아홉글자짜리문장임"})
    assert e.value.codes == {"reaction": ["too_short"], "specific": ["too_short"]}
    services.submit(a, labelers[0], {"reaction": "좋아요", "specific": "열글자짜리문장입니다"})


def test_deactivating_a_labeler_returns_their_leases(make_project, labelers):
    project = make_project(1, overlap=1)
    a = services.next_assignment(project, labelers[0])
    assert services.deactivate_member(project, labelers[0]) == 1
    a.refresh_from_db()
    assert a.status == AssignmentStatus.RETURNED and slots(project) == [0]
    with pytest.raises(services.NotAMember):
        services.next_assignment(project, labelers[0])
    with pytest.raises(services.NotAMember):
        services.submit(a, labelers[0], GOOD)
    assert services.next_assignment(project, labelers[1]).image_id == a.image_id


def test_outsiders_and_closed_projects_get_no_work(make_project, labelers):
    project = make_project(1, members=labelers[:1])
    with pytest.raises(services.NotAMember):
        services.next_assignment(project, labelers[1])
    project.is_active = False
    project.save()
    with pytest.raises(services.ProjectInactive):
        services.next_assignment(project, labelers[0])


def test_one_cannot_act_on_another_labelers_assignment(make_project, labelers):
    project = make_project(1)
    a = services.next_assignment(project, labelers[0])
    with pytest.raises(services.LabelingError):
        services.submit(a, labelers[1], GOOD)
    with pytest.raises(services.LabelingError):
        services.skip(a, labelers[1])
    assert not Comment.objects.exists()


# --- Selectors ------------------------------------------------------------------------------

def test_labeled_counts_and_project_progress(make_project, labelers, source, food):
    people = Category.objects.get(slug="people")
    project = make_project(3, overlap=2, category=food)
    fake_images(source, 2, category=people, start=100)
    services.sync_project_images(project)  # no filters: every image, people too
    # Two labelers on the same started food photo, one more food photo once.
    done = []
    for n, user in enumerate(labelers[:2]):
        a = services.next_assignment(project, user)
        services.submit(a, user, texts(n))
        done.append(a.image_id)
    assert done[0] == done[1]
    img = Image.objects.get(pk=done[0])
    progress = selectors.project_progress(project)
    by_cat = {row["category"].slug: row["counts"] for row in progress}
    assert sum(sum(c) for c in by_cat.values()) == 5
    assert sum(by_cat[img.category.slug][2:]) == 1

    assert selectors.labeled_image_counts() == {(img.category_id, img.subcategory_id): 1}
    rows, totals = quota_dashboard()
    assert totals["labeled"] == 1
    assert next(r for r in rows if r.id == img.category_id).labeled == 1


def test_progress_counts_photos_by_submitted_sets(make_project, labelers, food):
    project = make_project(3, overlap=2, category=food, categories=[food])
    a = services.next_assignment(project, labelers[0])
    services.submit(a, labelers[0], texts(0))
    b = services.next_assignment(project, labelers[1])  # the started photo: now 2 sets
    services.submit(b, labelers[1], texts(1))
    c = services.next_assignment(project, labelers[2])
    services.submit(c, labelers[2], texts(2))
    assert selectors.project_progress(project) == [{"category": food, "counts": [1, 1, 1], "total": 3}]
