"""The categories, subcategories and licences every installation starts with.

The data is frozen here, not imported from live code: a migration must do the same on every
database whenever it runs, so later edits elsewhere cannot change what it creates."""
from django.db import migrations

# (slug, name, quota, [(slug, name, quota), ...]): the known build, 50,000 photos in five categories.
CATEGORIES = [
    ("people", "People / 사람", 10_000, [("selfie", "Selfie / 셀카", 5_000), ("non-selfie", "Non-selfie / 인물", 5_000)]),
    ("food", "Food / 음식", 15_000, [
        ("korean", "Korean food / 한식", 5_000),
        ("non-korean", "Non-Korean food / 기타 음식", 5_000),
        ("packaged", "Packaged food / 가공식품", 5_000),
    ]),
    ("places", "Places / 장소", 15_000, [("landmark", "Landmark / 랜드마크", 7_500), ("outdoor", "Outdoor / 야외", 7_500)]),
    ("animals", "Animals / 동물", 5_000, [("pet", "Pet / 반려동물", 2_500), ("other-animal", "Other animal / 기타 동물", 2_500)]),
    ("other", "Other / 기타", 5_000, [
        ("electronics", "Electronics / 전자제품", 1_667),
        ("cosmetics", "Cosmetics / 화장품", 1_667),
        ("clothing", "Clothing / 의류", 1_666),
    ]),
]

# (code, name, url, commercial_use, attribution_required, share_alike)
LICENCES = [
    ("cc-by-2.0", "CC BY 2.0", "https://creativecommons.org/licenses/by/2.0/", True, True, False),
    ("cc-by-4.0", "CC BY 4.0", "https://creativecommons.org/licenses/by/4.0/", True, True, False),
    ("cc-by-sa-4.0", "CC BY-SA 4.0", "https://creativecommons.org/licenses/by-sa/4.0/", True, True, True),
    ("cc0-1.0", "CC0 1.0", "https://creativecommons.org/publicdomain/zero/1.0/", True, False, False),
    ("public-domain", "Public domain", "https://creativecommons.org/publicdomain/mark/1.0/", True, False, False),
    ("open-data-commercial", "Open dataset licence, commercial use allowed (e.g. AI Hub)", "", True, True, False),
    ("cc-by-nc-2.0", "CC BY-NC 2.0", "https://creativecommons.org/licenses/by-nc/2.0/", False, True, False),
    ("cc-by-nc-4.0", "CC BY-NC 4.0", "https://creativecommons.org/licenses/by-nc/4.0/", False, True, False),
    ("cc-by-nc-sa-4.0", "CC BY-NC-SA 4.0", "https://creativecommons.org/licenses/by-nc-sa/4.0/", False, True, True),
    ("cc-by-nc-nd-4.0", "CC BY-NC-ND 4.0", "https://creativecommons.org/licenses/by-nc-nd/4.0/", False, True, False),
    ("proprietary", "Own photos (all rights held by the team)", "", True, False, False),
]


def forwards(apps, schema_editor):
    Category = apps.get_model("datasets", "Category")
    Subcategory = apps.get_model("datasets", "Subcategory")
    Licence = apps.get_model("datasets", "Licence")
    for position, (slug, name, quota, subs) in enumerate(CATEGORIES, start=1):
        cat, _ = Category.objects.get_or_create(slug=slug, defaults={"name": name, "quota": quota, "position": position})
        for sub_pos, (sslug, sname, squota) in enumerate(subs, start=1):
            Subcategory.objects.get_or_create(
                category=cat, slug=sslug, defaults={"name": sname, "quota": squota, "position": sub_pos}
            )
    for code, name, url, commercial, attribution, share_alike in LICENCES:
        Licence.objects.get_or_create(
            code=code,
            defaults={"name": name, "url": url, "commercial_use": commercial,
                      "attribution_required": attribution, "share_alike": share_alike},
        )


class Migration(migrations.Migration):
    dependencies = [("datasets", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
