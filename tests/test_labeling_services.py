"""Labeling services beyond the engine's core promises: fetching ahead, the quota-first pick
order, guidelines and examples, labeler CSV import, reports and the dashboard counters.

Runs on SQLite by default and on PostgreSQL with DATABASE_URL=postgres://...
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts import services as accounts
from accounts.models import User
from datasets.models import Category
from labeling import services
from labeling.models import Assignment, Comment, GuidelineExample, GuidelineVersion, ProjectImage, ProjectMember
from tests.factories import fake_images, texts

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    """Messages are asserted in English (the default language is Korean)."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def project(source, labelers):
    fake_images(source, 6, category=Category.objects.get(slug="food"))
    p = services.create_project("services", overlap=2, cap_per_labeler=4)
    services.sync_project_images(p)
    for user in labelers[:3]:
        services.add_member(p, user)
    return p


# --- Fetching ahead ------------------------------------------------------------------------

def test_next_with_count_fetches_ahead_and_counts_towards_the_cap(project, labelers):
    services.add_member(project, labelers[0], cap_override=3)
    first, ahead = services.next_assignments(project, labelers[0], count=2)
    assert first.image_id != ahead.image_id
    # Asking again gives the same two, oldest first: nothing new is leased.
    again = services.next_assignments(project, labelers[0], count=2)
    assert [a.pk for a in again] == [first.pk, ahead.pk]
    services.submit(first, labelers[0], texts(1))
    after = services.next_assignments(project, labelers[0], count=2)
    assert after[0].pk == ahead.pk and len(after) == 2
    services.submit(after[0], labelers[0], texts(2))
    # One submitted + one submitted + one leased = the cap of 3: no more fetching ahead.
    final = services.next_assignments(project, labelers[0], count=2)
    assert [a.pk for a in final] == [after[1].pk]
    services.submit(final[0], labelers[0], texts(3))
    with pytest.raises(services.CapReached):
        services.next_assignments(project, labelers[0], count=2)


# --- Pick order: started photos, then categories furthest from quota -----------------------

def test_new_photos_come_from_the_category_furthest_from_quota(source, labelers):
    food, animals = Category.objects.get(slug="food"), Category.objects.get(slug="animals")
    Category.objects.filter(pk=food.pk).update(quota=4)
    Category.objects.filter(pk=animals.pk).update(quota=100)
    fake_images(source, 4, category=food)
    fake_images(source, 4, category=animals, start=100)
    project = services.create_project("quota-order", overlap=1, cap_per_labeler=50)
    services.sync_project_images(project)
    for user in labelers:
        services.add_member(project, user)
    # Nothing labeled: food (0/4) and animals (0/100) tie at 0 %, categories keep their order
    # (food comes before animals). Label two food photos: food is then at 50 % of its quota,
    # animals at 0 %, and animals must come first.
    prio = dict(ProjectImage.objects.filter(project=project).values_list("category_id", "priority").distinct())
    assert prio[food.pk] < prio[animals.pk]
    for _ in range(2):
        a = services.next_assignment(project, labelers[0])
        Assignment.objects.filter(pk=a.pk).update(image=ProjectImage.objects.filter(
            project=project, category=food, slots_taken=0).first().image)
    ProjectImage.objects.filter(project=project).update(slots_taken=0)
    Assignment.objects.filter(project=project).update(status="submitted")
    services.refresh_priorities(project)
    prio = dict(ProjectImage.objects.filter(project=project).values_list("category_id", "priority").distinct())
    assert prio[animals.pk] < prio[food.pk]
    picked = services.next_assignment(project, labelers[1])
    assert picked.image.category_id == animals.pk


def test_started_photos_come_before_the_quota_order(source, labelers):
    food, animals = Category.objects.get(slug="food"), Category.objects.get(slug="animals")
    fake_images(source, 1, category=food)
    fake_images(source, 3, category=animals, start=100)
    project = services.create_project("started-first", overlap=2)
    services.sync_project_images(project)
    for user in labelers:
        services.add_member(project, user)
    food_row = ProjectImage.objects.get(project=project, category=food)
    ProjectImage.objects.filter(project=project, category=food).update(priority=9)
    ProjectImage.objects.filter(project=project, category=animals).update(priority=0)
    ProjectImage.objects.filter(pk=food_row.pk).update(slots_taken=1)
    assert services.next_assignment(project, labelers[0]).image_id == food_row.image_id


def test_refresh_follows_a_recategorised_image(project, source):
    row = ProjectImage.objects.filter(project=project).first()
    animals = Category.objects.get(slug="animals")
    row.image.category = animals
    row.image.save(update_fields=["category"])
    services.refresh_priorities(project)
    row.refresh_from_db()
    assert row.category_id == animals.pk


def test_priority_refresh_is_claimed_once_per_interval(project, labelers, settings):
    settings.LABELING_PRIORITY_REFRESH_SECONDS = 3600
    project.__class__.objects.filter(pk=project.pk).update(priorities_refreshed_at=timezone.now() - timedelta(hours=2))
    services.next_assignment(project, labelers[0])
    project.refresh_from_db()
    first = project.priorities_refreshed_at
    assert first > timezone.now() - timedelta(minutes=1)
    services.next_assignment(project, labelers[1])
    project.refresh_from_db()
    assert project.priorities_refreshed_at == first


# --- Guidelines and examples ---------------------------------------------------------------

def test_comments_record_the_guideline_version_and_publishing_changes_none(project, labelers):
    image = ProjectImage.objects.filter(project=project).first().image
    services.save_example(project, image, note="food", comments=[
        {"comment_type": "specific", "text": "족발 윤기가 장난 아니네요 쫀득해 보여요", "verdict": "good", "why": "concrete"},
        {"comment_type": "reaction", "text": "ㅋㅋㅋ", "verdict": "bad", "why": "jamo only"},
    ])
    services.save_guideline_draft(project, "# 가이드\n\n자연스럽게.")
    v1 = services.publish_guideline(project, published_by=User.objects.get(username="lab0"))
    assert v1.version == 1 and project.guideline_version == 1
    assert [c["verdict"] for c in v1.examples[0]["comments"]] == ["good", "bad"]

    a = services.next_assignment(project, labelers[0])
    services.submit(a, labelers[0], texts(1))
    assert set(Comment.objects.values_list("guideline_version", flat=True)) == {1}

    # Copying an example is refused (the frozen copy of the published version is what counts).
    b = services.next_assignment(project, labelers[1])
    with pytest.raises(services.SubmissionRejected) as exc:
        services.submit(b, labelers[1], {"reaction": "좋아요 좋아", "specific": "족발 윤기가 장난 아니네요, 쫀득해 보여요!"})
    assert exc.value.codes["specific"] == ["copied_example"]

    v2 = services.publish_guideline(project, "# 가이드 v2")
    assert v2.version == 2
    services.submit(b, labelers[1], texts(2))
    assert sorted(Comment.objects.values_list("guideline_version", flat=True)) == [1, 1, 2, 2]
    assert GuidelineVersion.objects.get(project=project, version=1).body == "# 가이드\n\n자연스럽게."


def test_publishing_an_empty_guideline_is_refused(project):
    with pytest.raises(ValidationError):
        services.publish_guideline(project, "   ")
    assert not GuidelineVersion.objects.exists()


def test_example_validation_writes_nothing(project):
    image = ProjectImage.objects.filter(project=project).first().image
    with pytest.raises(ValidationError) as exc:
        services.save_example(project, image, comments=[
            {"comment_type": "nope", "text": "", "verdict": "meh"},
        ])
    assert set(exc.value.message_dict) == {"comments[0].text", "comments[0].verdict", "comments[0].comment_type"}
    assert not GuidelineExample.objects.exists()
    ex = services.save_example(project, image, comments=[{"text": "좋은 예시", "verdict": "good"}])
    with pytest.raises(ValidationError):
        services.save_example(project, image, comments=[])  # the same photo twice
    services.save_example(project, image, note="edited", example=ex,
                          comments=[{"text": "다른 예시", "verdict": "bad", "why": "w"}])
    ex.refresh_from_db()
    assert ex.note == "edited" and list(ex.comments.values_list("text", flat=True)) == ["다른 예시"]


# --- Labelers from CSV ---------------------------------------------------------------------

def test_csv_import_creates_and_adds_labelers(project):
    accounts.create_user("existing", "pw-long-enough-1", "labeler")
    data = "username,password,name,email,cap\r\nnew1,secret-pass-1,김민지,a@example.com,50\r\nexisting,,,,\r\n"
    result = services.import_labelers_csv(project, ("\ufeff" + data).encode())
    assert result == {"created": 1, "added": 2, "rows": 2}
    new1 = User.objects.get(username="new1")
    assert new1.role == "labeler" and new1.first_name == "김민지" and new1.check_password("secret-pass-1")
    assert ProjectMember.objects.get(project=project, user=new1).cap == 50
    assert ProjectMember.objects.get(project=project, user__username="existing").cap == project.cap_per_labeler


@pytest.mark.parametrize("data, fragment", [
    ("name\nx\n", "header"),
    ("username,colour\nx,red\n", "Unknown columns"),
    ("username,password\n", "no rows"),
    ("username,password\nok1,secret-pass-1\n,secret-pass-2\n", "Line 3"),
    ("username,password\nok1,short\n", "Line 2: a new account needs a password"),
    ("username,password\nok1,secret-pass-1\nok1,secret-pass-1\n", "appears twice"),
    ("username,password,cap\nok1,secret-pass-1,-3\n", "cap must be"),
    ("username,password\nplanner1,secret-pass-1\n", "not a labeler"),
    ("username,password\nbad name!,secret-pass-1\n", "Line 2"),
])
def test_csv_import_refuses_bad_files_and_writes_nothing(project, users, data, fragment):
    before = User.objects.count(), ProjectMember.objects.count()
    with pytest.raises(ValidationError) as exc:
        services.import_labelers_csv(project, data.encode())
    assert fragment in " ".join(exc.value.messages)
    assert (User.objects.count(), ProjectMember.objects.count()) == before


def test_csv_import_refuses_non_utf8(project):
    with pytest.raises(ValidationError, match="UTF-8"):
        services.import_labelers_csv(project, "username\n김\n".encode("cp949"))


# --- Reports, rejections and time per photo ------------------------------------------------

def test_an_excluded_report_keeps_the_photo_out(source, labelers):
    fake_images(source, 1)
    project = services.create_project("report", overlap=2)
    services.sync_project_images(project)
    for user in labelers:
        services.add_member(project, user)
    a = services.next_assignment(project, labelers[0])
    services.report(a, labelers[0], "personal_info", "얼굴이 보여요")
    services.resolve_report(a, "excluded")
    with pytest.raises(services.NoWorkLeft):
        services.next_assignment(project, labelers[1])
    services.resolve_report(a, "kept")
    assert services.next_assignment(project, labelers[1]).image_id == a.image_id
    with pytest.raises(services.LabelingError):
        services.resolve_report(services.next_assignment(project, labelers[2]), "kept")


def test_rejections_and_work_time_are_counted(project, labelers):
    a = services.next_assignment(project, labelers[0])
    Assignment.objects.filter(pk=a.pk).update(leased_at=timezone.now() - timedelta(seconds=40))
    for _ in range(2):
        with pytest.raises(services.SubmissionRejected):
            services.submit(a, labelers[0], {"reaction": "ㅋㅋ", "specific": "짧음"})
    services.submit(a, labelers[0], texts(1))
    member = ProjectMember.objects.get(project=project, user=labelers[0])
    a.refresh_from_db()
    assert member.rejection_count == 2 and member.submitted_count == 1
    assert 39 <= a.work_seconds < 100 and member.work_seconds_total == pytest.approx(a.work_seconds)
    # The next photo was fetched ahead long ago: its time starts at the previous submission.
    b = services.next_assignment(project, labelers[0])
    Assignment.objects.filter(pk=b.pk).update(leased_at=timezone.now() - timedelta(hours=1))
    services.submit(b, labelers[0], texts(2))
    b.refresh_from_db()
    assert b.work_seconds < 30


def test_moving_an_example_onto_another_examples_photo_is_refused(project):
    a, b = [row.image for row in ProjectImage.objects.filter(project=project)[:2]]
    services.save_example(project, a, comments=[{"text": "예시 하나", "verdict": "good"}])
    ex = services.save_example(project, b, comments=[{"text": "예시 둘", "verdict": "good"}])
    with pytest.raises(ValidationError, match="already an example"):
        services.save_example(project, a, example=ex, comments=[{"text": "예시 셋", "verdict": "bad"}])
    ex.refresh_from_db()
    assert ex.image_id == b.pk and list(ex.comments.values_list("text", flat=True)) == ["예시 둘"]


def test_skipping_a_submitted_photo_says_so(project, labelers):
    a = services.next_assignment(project, labelers[0])
    services.submit(a, labelers[0], texts(1))
    with pytest.raises(services.AlreadySubmitted):
        services.skip(a, labelers[0])


def test_a_report_records_when_it_was_made(project, labelers):
    a = services.next_assignment(project, labelers[0])
    Assignment.objects.filter(pk=a.pk).update(leased_at=timezone.now() - timedelta(minutes=20))
    before = timezone.now()
    services.report(a, labelers[0], "broken")
    a.refresh_from_db()
    assert a.reported_at >= before
    first = a.reported_at
    services.report(a, labelers[0], "inappropriate")  # a repeated click changes nothing
    a.refresh_from_db()
    assert a.reported_at == first and a.report_reason == "broken"
