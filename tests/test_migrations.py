"""Data migrations fill what they add from the rows already there."""
import hashlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_labeling_0002_backfills_queue_categories_and_member_counts():
    executor = MigrationExecutor(connection)
    before = [("labeling", "0001_initial")]
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    User = apps.get_model("accounts", "User")
    Category = apps.get_model("datasets", "Category")
    Licence = apps.get_model("datasets", "Licence")
    Source = apps.get_model("datasets", "Source")
    Image = apps.get_model("datasets", "Image")
    Project = apps.get_model("labeling", "Project")
    ProjectMember = apps.get_model("labeling", "ProjectMember")
    ProjectImage = apps.get_model("labeling", "ProjectImage")
    Assignment = apps.get_model("labeling", "Assignment")

    food = Category.objects.get(slug="food")
    source = Source.objects.create(kind="upload", name="m", default_licence=Licence.objects.get(code="cc0-1.0"))
    images = []
    for i in range(3):
        digest = hashlib.sha256(str(i).encode()).hexdigest()
        images.append(Image.objects.create(
            file=f"i{i}.jpg", thumbnail=f"t{i}.jpg", sha256=digest, pixel_sha256=digest, phash=i, width=9,
            height=9, original_width=9, original_height=9, original_format="JPEG", original_bytes=1,
            category=food, source=source, licence=source.default_licence))
    user = User.objects.create(username="old-labeler", role="labeler")
    project = Project.objects.create(name="old")
    ProjectMember.objects.create(project=project, user=user)
    now = timezone.now()
    for i, image in enumerate(images):
        ProjectImage.objects.create(project=project, image=image, submitted_count=1 if i < 2 else 0)
        Assignment.objects.create(project=project, image=image, labeler=user, leased_at=now, expires_at=now,
                                  status="submitted" if i < 2 else "leased", submitted_at=now if i < 2 else None)

    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    from labeling.models import ProjectImage as NewProjectImage
    from labeling.models import ProjectMember as NewProjectMember

    assert set(NewProjectImage.objects.values_list("category_id", flat=True)) == {food.pk}
    member = NewProjectMember.objects.get(user__username="old-labeler")
    assert member.submitted_count == 2 and member.last_submitted_at is not None
