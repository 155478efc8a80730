"""`manage.py seed_demo`: demo users and photos for the embedded platform, safe to repeat."""
import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
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

    assert Image.objects.count() == 12
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
    assert Assignment.objects.filter(project=project, status="submitted", labeler__username="labeler2").count() == 8
    assert Assignment.objects.filter(project=project, status="submitted", labeler__username="labeler3").count() == 6
    # Run again: nothing new.
    run(images=10)
    assert Project.objects.count() == 1
    assert Assignment.objects.filter(status="submitted").count() == 8 + 6  # labeler2's and labeler3's


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

