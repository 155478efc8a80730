"""`manage.py seed_demo`: demo users and photos for the embedded platform, safe to repeat."""
import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from curation.models import Flag, FlagKind
from datasets.models import Category, Image, ImportJob, Source, Subcategory
from labeling.management.commands.seed_demo import DEMO_SOURCE, DEMO_USERS


def run(**kwargs) -> str:
    from io import StringIO

    out = StringIO()
    call_command("seed_demo", stdout=out, **kwargs)
    return out.getvalue()


@pytest.mark.django_db
def test_seed_demo_twice_creates_everything_once():
    first = run(images=12)
    jobs = ImportJob.objects.count()
    second = run(images=12)

    assert Image.objects.count() == 12 + 1  # and the face-in-food example, once
    assert Flag.objects.filter(kind=FlagKind.FACE, image__original_name="demo-food-face.jpg").count() == 1
    assert "a face in a food photo flagged with its box" in first
    assert ImportJob.objects.count() == jobs  # nothing re-imported
    assert Source.objects.filter(name=DEMO_SOURCE).count() == 1
    for username, password, role in DEMO_USERS:
        user = User.objects.get(username=username)
        assert user.role == role
        assert user.check_password(password)
        assert f"username: {username}" in first and password in first and password in second
    # The photos land across categories and subcategories, through the real pipeline.
    assert Image.objects.order_by().values("category").distinct().count() == Category.objects.count()
    assert Image.objects.order_by().values("subcategory").distinct().count() == Subcategory.objects.count()
    assert all(i.thumbnail and i.phash is not None and i.licence.code == "cc0-1.0" for i in Image.objects.all())


@pytest.mark.django_db
def test_seed_demo_keeps_a_changed_password():
    run(images=0)
    planner = User.objects.get(username="planner")
    planner.set_password("changed-by-the-team")
    planner.save()
    run(images=0)
    planner.refresh_from_db()
    assert planner.check_password("changed-by-the-team")


@pytest.mark.django_db
def test_seed_demo_refuses_in_production(settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="production"):
        run(images=2)
    assert not User.objects.filter(username__in=[u for u, _, _ in DEMO_USERS]).exists()
    assert Image.objects.count() == 0
    # --force is the way past it, on a throwaway installation.
    run(images=0, force=True)
    assert User.objects.filter(username="admin").exists()


@pytest.mark.django_db
def test_seed_demo_creates_a_labeling_project_to_click_through():
    from labeling.models import Assignment, GuidelineVersion, Project, ProjectMember

    out = run(images=10)
    project = Project.objects.get()
    assert "Demo project" in out
    assert project.queue.count() == 10
    assert ProjectMember.objects.filter(project=project, user__username="labeler", is_active=True).exists()
    version = GuidelineVersion.objects.get(project=project)
    assert project.guideline_version == version.version == 1
    assert {c["verdict"] for ex in version.examples for c in ex["comments"]} == {"good", "bad"}
    # labeler2: eight sets, and a ninth with the insulting comment (see the review queue test).
    assert Assignment.objects.filter(project=project, status="submitted", labeler__username="labeler2").count() == 9
    assert Assignment.objects.filter(project=project, status="submitted", labeler__username="labeler3").count() == 6
    # Run again: nothing new.
    run(images=10)
    assert Project.objects.count() == 1
    assert Assignment.objects.filter(status="submitted").count() == 9 + 6  # labeler2's and labeler3's


@pytest.mark.django_db
def test_the_demo_project_has_photos_a_default_snapshot_freezes():
    """Six demo photos have two comment sets each (the project's overlap), so a newcomer's first
    snapshot with the form's defaults is not empty."""
    from labeling.models import Project
    from labeling.snapshots import freeze_snapshot, preview

    run(images=12)
    project = Project.objects.get()
    assert preview([project]) == {"photos": 6, "comments": 24, "min_sets": 2}
    snapshot = freeze_snapshot("demo", projects=[project])
    assert (snapshot.image_count, snapshot.comment_count) == (6, 24)



@pytest.mark.django_db
def test_in_the_demo_project_a_phone_number_is_refused_in_korean():
    """Issue 12, "Done means": the labeler's submit refuses a phone number with a clear Korean message."""
    from rest_framework.test import APIClient

    from labeling.models import Comment, Project

    run(images=10)
    project = Project.objects.get()
    client = APIClient()
    client.force_authenticate(User.objects.get(username="labeler"))
    lease = client.post(f"/api/projects/{project.pk}/next/", {"count": 1}, format="json").json()["assignments"][0]
    before = Comment.objects.count()
    refused = client.post(f"/api/assignments/{lease['id']}/submit/", {"comments": {
        "reaction": "와 멋지다", "specific": "궁금하면 010-1234-5678 로 연락 주세요 사진 좋네요"}},
        format="json", HTTP_ACCEPT_LANGUAGE="ko")
    assert refused.status_code == 400, refused.content
    assert refused.json()["errors"]["specific"] == [{"code": "phone", "message": "코멘트에는 전화번호를 쓸 수 없어요."}]
    assert Comment.objects.count() == before


@pytest.mark.django_db
def test_the_demo_review_queue_shows_the_insult_and_a_rejection_reopens_the_photo(client):
    """Issue 12, "Done means": the insulting comment is in the review queue with its evidence; the
    planner rejects it, and the photo goes back for a new comment set, which another labeler writes."""
    from curation import services as curation
    from curation.models import Flag, FlagKind, FlagStatus
    from labeling import services as labeling
    from labeling.management.commands.seed_demo import DEMO_INSULT
    from labeling.models import AssignmentStatus, Project

    out = run(images=10)
    assert "flagged for toxicity at submit" in out
    project = Project.objects.get()
    flag = Flag.objects.get(project=project, kind=FlagKind.TOXICITY)
    assert flag.comment.text == DEMO_INSULT["specific"] and flag.status == FlagStatus.OPEN
    assert flag.evidence["matched"] == "병신 (general)" and flag.evidence["source"] == "inline at submit"
    planner = User.objects.get(username="planner")
    client.force_login(planner)
    page = client.get("/curation/review/", {"kind": "toxicity"}, HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert DEMO_INSULT["specific"] in page and "병신 (general)" in page

    curation.decide([flag], "reject_comment", planner, reason="욕설")
    flag.refresh_from_db()
    rejected = flag.comment.assignment
    rejected.refresh_from_db()
    assert flag.status == FlagStatus.REJECTED and rejected.status == AssignmentStatus.REJECTED
    # The photo is back in the queue: the demo labeler reaches it and writes a new set.
    labeler = User.objects.get(username="labeler")
    for n in range(10):
        a = labeling.next_assignment(project, labeler)
        labeling.submit(a, labeler, {"reaction": f"좋아요 {n}번", "specific": f"장면이 또렷하고 색이 예뻐요 {n}번째 사진"})
        if a.image_id == rejected.image_id:
            break
    else:
        pytest.fail("the rejected set's photo never came back to another labeler")
    assert project.assignments.filter(image_id=rejected.image_id, status=AssignmentStatus.SUBMITTED).get().labeler == labeler
