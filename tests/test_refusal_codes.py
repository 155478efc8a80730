"""Import refusals, warnings and stops carry a code and parameters (datasets.refusals) and are
said in the reader's language: Korean by default, English with Accept-Language: en."""
import re
import zipfile
from io import BytesIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import translation
from django.utils.functional import Promise

from datasets import refusals, services
from datasets.models import ImportItem, ImportJob, ImportStatus, Outcome
from tests.conftest import make_photo

MIGRATION = "0005_importitem_reason_code"  # the migration that added the codes
PARAM = re.compile(r"%\((\w+)\)s")


def sample_params(template: str) -> dict:
    """A value for each parameter a message names: numbers where it counts, text elsewhere."""
    numbers = {"size", "limit", "pixels", "frames", "have", "quota", "members", "ratio", "line", "fields",
               "header", "count", "minutes", "days"}
    return {name: 12345 if name in numbers else f"<{name}>" for name in PARAM.findall(template)}


# ---------------------------------------------------------------- the registry


def test_every_message_is_translatable_and_formats_with_its_parameters_in_both_languages():
    assert len(refusals.MESSAGES) > 50
    for code, template in refusals.MESSAGES.items():
        assert isinstance(template, Promise), f"{code}: not a lazy translatable string"
        english = template._args[0]
        params = sample_params(english)
        for language in ("en", "ko"):
            with translation.override(language):
                catalog = str(template)
                # A translation keeps exactly the parameters of its English.
                assert sorted(PARAM.findall(catalog)) == sorted(params), (code, language, catalog)
                text = refusals.render(code, params)
                assert "%(" not in text and text, (code, language, text)
                for name, value in params.items():
                    assert (f"{value:,}" if isinstance(value, int) else value) in text, (code, name, text)


def test_once_the_korean_catalog_has_refusal_messages_it_has_every_one():
    with translation.override("ko"):
        untranslated = sorted(code for code, template in refusals.MESSAGES.items()
                              if str(template) == template._args[0] and code != "several")
    if len(untranslated) == len(refusals.MESSAGES) - 1:
        pytest.skip("the compiled Korean catalog has no refusal messages yet (locale/ not merged)")
    assert untranslated == []


def test_a_reason_is_its_english_text_with_a_code_and_json_parameters():
    reason = refusals.Reason("file_too_large", size=52_428_801, limit=52_428_800)
    assert reason == "File is 52,428,801 bytes; the limit is 52,428,800."
    assert (reason.code, reason.params) == ("file_too_large", {"size": 52_428_801, "limit": 52_428_800})
    nested = refusals.Reason("cannot_read", detail=refusals.Reason("symlink_loop"))
    assert nested == "Cannot read: A loop of symbolic links; not read."
    assert nested.params == {"detail": {"code": "symlink_loop", "params": {}}}
    # Text parameters are made safe to store and show: no NUL, no line break, no bidi override.
    odd = refusals.Reason("folder_not_found", path="a\0b\nc\u202e.jpg")
    assert odd.params == {"path": "a\\x00b\\nc\\u202e.jpg"}
    with pytest.raises(KeyError):
        refusals.Reason("no_such_code")


def test_unknown_codes_and_lines_without_a_code_show_their_stored_text():
    assert refusals.render("", {}, fallback="Old English text.") == "Old English text."
    assert refusals.render("a_code_from_a_later_version", {"x": 1}, fallback="Stored.") == "Stored."
    # Parameters that no longer fit the message: the stored text rather than an error.
    assert refusals.render("file_too_large", {"size": 1}, fallback="Stored.") == "Stored."


# ---------------------------------------------------------------- an import, on the page and in the API


def zip_with_unsafe_member() -> bytes:
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../evil.jpg", make_photo(seed=9))
    return buf.getvalue()


@pytest.fixture
def bad_import(source):
    good = make_photo(seed=1)
    files = [
        ("good.jpg", good),
        ("again.jpg", good),  # the same bytes: a duplicate
        ("empty.jpg", b""),
        ("notes.jpg", b"this is not an image at all"),
        ("tiny.png", make_photo(32, 32, seed=2, fmt="PNG")),
        ("strip.png", make_photo(2000, 100, seed=3, fmt="PNG")),
        ("bad.zip", zip_with_unsafe_member()),
    ]
    job = services.create_import(source=source, files=[SimpleUploadedFile(n, d) for n, d in files], enqueue=False)
    return services.run_import(job.pk)


KOREAN = {
    "again.jpg": "이미 저장된 이미지와 바이트가 같습니다.",
    "empty.jpg": "빈 파일입니다(0바이트).",
    "notes.jpg": "이미지가 아니거나 지원하지 않는 형식입니다",
    "tiny.png": "이미지가 32x32입니다. 짧은 변은 최소 64 px이어야 합니다.",
    "strip.png": "이미지가 2000x100(20:1)입니다. 긴 변은 짧은 변의 최대 10배까지 허용됩니다.",
    "bad.zip/../evil.jpg": "zip 안의 경로가 안전하지 않아(절대 경로이거나 ../ 포함) 읽지 않았습니다.",
}
ENGLISH = {
    "again.jpg": "Same bytes as an image already stored.",
    "empty.jpg": "Empty file (0 bytes).",
    "notes.jpg": "Not an image, or a format that is not supported",
    "tiny.png": "Image is 32x32; the shortest side must be at least 64 px.",
    "strip.png": "Image is 2000x100 (20:1); the longest side may be at most 10 times the shortest.",
    "bad.zip/../evil.jpg": "Unsafe path in zip (absolute or with ../); not read.",
}
CODES = {
    "good.jpg": "", "again.jpg": "same_bytes", "empty.jpg": "empty_file", "notes.jpg": "not_an_image",
    "tiny.png": "side_too_short", "strip.png": "too_elongated", "bad.zip/../evil.jpg": "zip_unsafe_path",
}


def test_report_lines_store_codes_and_parameters_beside_their_english(bad_import):
    items = {i.name: i for i in bad_import.items.all()}
    assert {name: i.reason_code for name, i in items.items()} == CODES
    assert items["tiny.png"].reason_params == {"dimensions": "32x32", "limit": 64}
    assert items["strip.png"].reason_params == {"dimensions": "2000x100", "ratio": "20:1", "limit": 10}
    for name, english in ENGLISH.items():
        assert items[name].reason.startswith(english)  # the stored text stays English (search, fallback)
    assert items["again.jpg"].outcome == Outcome.DUPLICATE


def test_the_import_page_says_the_reasons_in_korean_and_in_english_when_asked(client, users, bad_import):
    client.force_login(users["planner"])
    url = reverse("import-detail", args=[bad_import.pk])
    korean = client.get(url).content.decode()
    for name, text in KOREAN.items():
        assert text in korean, name
    for text in ENGLISH.values():
        assert text not in korean
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for text in ENGLISH.values():
        assert text in english
    progress = client.get(reverse("import-progress", args=[bad_import.pk])).json()
    assert {i["name"]: i["reason"] for i in progress["items"]}["empty.jpg"] == KOREAN["empty.jpg"]


def test_api_report_lines_carry_codes_and_say_the_reason_in_the_requests_language(api, bad_import):
    url = f"/api/imports/{bad_import.pk}/items/"
    korean = {i["name"]: i for i in api("planner").get(url).json()["results"]}
    english = {i["name"]: i for i in api("planner").get(url, HTTP_ACCEPT_LANGUAGE="en").json()["results"]}
    for name, code in CODES.items():
        assert korean[name]["reason_code"] == english[name]["reason_code"] == code
        assert korean[name]["reason_params"] == english[name]["reason_params"]
    for name, text in KOREAN.items():
        assert korean[name]["reason"].startswith(text) and english[name]["reason"].startswith(ENGLISH[name])
    assert korean["tiny.png"]["reason_params"] == {"dimensions": "32x32", "limit": 64}


def test_a_manifest_import_reports_row_and_read_errors_with_nested_codes(source, tmp_path, client, users):
    (tmp_path / "pipe.jpg").mkdir()  # a folder where a file was expected
    text = f'path,licence\n{tmp_path / "pipe.jpg"},\n{tmp_path / "gone.jpg"},\n,\nx.jpg,no-such-licence,extra\n'
    job = services.create_import(source=source, manifest=SimpleUploadedFile("m.csv", text.encode()), enqueue=False)
    job = services.run_import(job.pk)
    items = {i.position: i for i in job.items.all()}
    assert [items[p].reason_code for p in sorted(items)] == [
        "not_regular_folder", "cannot_read", "manifest_no_path", "manifest_too_many_fields",
    ]
    assert items[1].reason_params == {"detail": {"code": "file_missing", "params": {}}}
    assert items[1].reason == "Cannot read: No such file."
    assert items[3].reason_params == {"line": 5, "fields": 3, "header": 2}
    client.force_login(users["planner"])
    page = client.get(reverse("import-detail", args=[job.pk])).content.decode()
    assert "읽을 수 없습니다: 파일이 없습니다." in page
    assert "5번째 줄: 필드가 3개인데 헤더에는 2개입니다" in page


def test_licence_and_quota_refusals_and_warnings_have_codes(source, licence, settings):
    from datasets.models import Category, FullPolicy

    food = Category.objects.get(slug="food")
    food.quota, food.full_policy = 1, FullPolicy.WARN
    food.save()
    first = services.ingest_one(make_photo(seed=20), source=source, category=food)
    over = services.ingest_one(make_photo(seed=21), source=source, category=food, original_url="javascript:x")
    assert first.outcome == over.outcome == Outcome.ACCEPTED
    assert over.reason.code == "several"
    assert [r["code"] for r in over.reason.params["reasons"]] == ["quota_full_accepted", "bad_original_url"]
    with translation.override("ko"):
        assert "할당량을 넘어 받았습니다" in over.reason.text() and "original_url은 http(s) URL" in over.reason.text()
    settings.INGEST = {**settings.INGEST, "COMMERCIAL_ONLY": True}
    licence.commercial_use = False
    licence.save()
    refused = services.ingest_one(make_photo(seed=22), source=source, licence=licence)
    assert refused.outcome == Outcome.REFUSED and refused.reason.code == "non_commercial_licence"
    assert refused.reason.params == {"licence": licence.name}


def test_an_interrupted_imports_error_is_said_in_the_readers_language(source, client, api, users):
    job = services.create_import(source=source, files=[SimpleUploadedFile("a.jpg", make_photo(seed=30))],
                                 enqueue=False)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING)
    services.interrupt_import(job.pk, refusals.Reason("stopped_by_ctrl_c"))
    job.refresh_from_db()
    assert (job.error, job.error_code) == ("Stopped by Ctrl-C.", "stopped_by_ctrl_c")
    client.force_login(users["planner"])
    assert "Ctrl-C로 중단되었습니다." in client.get(reverse("import-detail", args=[job.pk])).content.decode()
    body = api("planner").get(f"/api/imports/{job.pk}/", HTTP_ACCEPT_LANGUAGE="en").json()
    assert (body["error"], body["error_code"]) == ("Stopped by Ctrl-C.", "stopped_by_ctrl_c")
    assert api("planner").get(f"/api/imports/{job.pk}/").json()["error"] == "Ctrl-C로 중단되었습니다."


def test_a_failed_listing_stores_the_readers_code(source, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    job = services.create_import(source=source, folder=str(folder), enqueue=False)
    folder.rmdir()
    job = services.run_import(job.pk)
    assert job.status == ImportStatus.FAILED and job.error_code == "folder_not_found"
    assert job.error_params == {"path": str(folder)}
    with translation.override("ko"):
        assert job.error_text == f"폴더를 찾을 수 없습니다: {folder}"


def test_lines_written_before_codes_show_their_stored_text(source, client, users):
    job = ImportJob.objects.create(source=source, kind="upload", status=ImportStatus.DONE, processed=1, refused=1)
    ImportItem.objects.create(job=job, position=0, name="old.jpg", outcome=Outcome.REFUSED,
                              reason="An English reason from before codes.")
    client.force_login(users["planner"])
    assert "An English reason from before codes." in client.get(reverse("import-detail", args=[job.pk])).content.decode()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_migration_gives_fixed_old_sentences_their_code():
    executor = MigrationExecutor(connection)
    before = [("datasets", "0004_web_links_http_only")]
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    Licence = apps.get_model("datasets", "Licence")
    Source = apps.get_model("datasets", "Source")
    Job = apps.get_model("datasets", "ImportJob")
    Item = apps.get_model("datasets", "ImportItem")
    source = Source.objects.create(kind="upload", name="m", default_licence=Licence.objects.get(code="cc0-1.0"))
    job = Job.objects.create(source=source, kind="upload", status="interrupted", error="Stopped by Ctrl-C.")
    Item.objects.create(job=job, position=0, name="a", outcome="duplicate",
                        reason="Same pixels as an image already stored.")
    Item.objects.create(job=job, position=1, name="b", outcome="refused", reason="File is 9 bytes; the limit is 8.")
    executor = MigrationExecutor(connection)
    executor.migrate([("datasets", MIGRATION)])
    executor.loader.build_graph()
    job = ImportJob.objects.get(pk=job.pk)
    assert job.error_code == "stopped_by_ctrl_c"
    assert dict(job.items.values_list("name", "reason_code")) == {"a": "same_pixels", "b": ""}
    with translation.override("ko"):
        assert [i.reason_text for i in job.items.order_by("position")] == [
            "이미 저장된 이미지와 픽셀이 같습니다.", "File is 9 bytes; the limit is 8.",
        ]
    executor.migrate(executor.loader.graph.leaf_nodes())
