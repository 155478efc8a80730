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


# What datasets/migrations/0002 created when it still imported datasets.seed (issue 8): the frozen
# data must create exactly these rows. (category slug, name, quota, position)
SEED_CATEGORIES = [
    ('people', 'People / 사람', 10000, 1),
    ('food', 'Food / 음식', 15000, 2),
    ('places', 'Places / 장소', 15000, 3),
    ('animals', 'Animals / 동물', 5000, 4),
    ('other', 'Other / 기타', 5000, 5),
]
# (category slug, slug, name, quota, position)
SEED_SUBCATEGORIES = [
    ('people', 'selfie', 'Selfie / 셀카', 5000, 1),
    ('people', 'non-selfie', 'Non-selfie / 인물', 5000, 2),
    ('food', 'korean', 'Korean food / 한식', 5000, 1),
    ('food', 'non-korean', 'Non-Korean food / 기타 음식', 5000, 2),
    ('food', 'packaged', 'Packaged food / 가공식품', 5000, 3),
    ('places', 'landmark', 'Landmark / 랜드마크', 7500, 1),
    ('places', 'outdoor', 'Outdoor / 야외', 7500, 2),
    ('animals', 'pet', 'Pet / 반려동물', 2500, 1),
    ('animals', 'other-animal', 'Other animal / 기타 동물', 2500, 2),
    ('other', 'electronics', 'Electronics / 전자제품', 1667, 1),
    ('other', 'cosmetics', 'Cosmetics / 화장품', 1667, 2),
    ('other', 'clothing', 'Clothing / 의류', 1666, 3),
]
# (code, name, url, commercial_use, attribution_required, share_alike)
SEED_LICENCES = [
    ('cc-by-2.0', 'CC BY 2.0', 'https://creativecommons.org/licenses/by/2.0/', True, True, False),
    ('cc-by-4.0', 'CC BY 4.0', 'https://creativecommons.org/licenses/by/4.0/', True, True, False),
    ('cc-by-sa-4.0', 'CC BY-SA 4.0', 'https://creativecommons.org/licenses/by-sa/4.0/', True, True, True),
    ('cc0-1.0', 'CC0 1.0', 'https://creativecommons.org/publicdomain/zero/1.0/', True, False, False),
    ('public-domain', 'Public domain', 'https://creativecommons.org/publicdomain/mark/1.0/', True, False, False),
    ('open-data-commercial', 'Open dataset licence, commercial use allowed (e.g. AI Hub)', '', True, True, False),
    ('cc-by-nc-2.0', 'CC BY-NC 2.0', 'https://creativecommons.org/licenses/by-nc/2.0/', False, True, False),
    ('cc-by-nc-4.0', 'CC BY-NC 4.0', 'https://creativecommons.org/licenses/by-nc/4.0/', False, True, False),
    ('cc-by-nc-sa-4.0', 'CC BY-NC-SA 4.0', 'https://creativecommons.org/licenses/by-nc-sa/4.0/', False, True, True),
    ('cc-by-nc-nd-4.0', 'CC BY-NC-ND 4.0', 'https://creativecommons.org/licenses/by-nc-nd/4.0/', False, True, False),
    ('proprietary', 'Own photos (all rights held by the team)', '', True, False, False),
]


@pytest.mark.django_db
def test_datasets_0002_creates_the_frozen_catalogue_without_live_code():
    """The seed migration creates the categories, subcategories and licences it always did, and
    imports nothing but Django (editing app code later cannot change what an old migration does)."""
    import ast
    import importlib
    import inspect

    from datasets.models import Category, Licence, Subcategory

    module = importlib.import_module("datasets.migrations.0002_seed_categories_and_licences")
    tree = ast.parse(inspect.getsource(module))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported == {"django.db"}

    assert sorted(Category.objects.values_list("slug", "name", "quota", "position")) == sorted(SEED_CATEGORIES)
    assert sorted(Subcategory.objects.values_list("category__slug", "slug", "name", "quota", "position")) \
        == sorted(SEED_SUBCATEGORIES)
    assert sorted(Licence.objects.values_list("code", "name", "url", "commercial_use", "attribution_required",
                                              "share_alike")) == sorted(SEED_LICENCES)
