"""The labeler's pages in a real browser, on a phone (390x844, Korean) and on a desktop.

A labeler starts from /label/, sees the photo large, types too short a comment and sees the
counter, the rule message and the submit button marked not ready, writes valid comments, submits with
Ctrl+Enter and gets the next photo at once (it was fetched and loaded ahead), skips, reports,
opens the examples, meets a refusal only the server can make, reaches the cap page, the no-work
page, the history and the guideline. Each step saves a screenshot.
"""
from __future__ import annotations

import re

import pytest

from tests.conftest import make_photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PHONE = (390, 844)
EXAMPLE_TEXT = "와 떡볶이 색 미쳤다"


def make_project(users, source, *, photos: int, cap: int, name="분식 사진 코멘트", seed=900, size=(640, 480),
                 category=None):
    """A project of `photos` new photos of `size`; with `category` (a slug), only that category's photos."""
    from datasets import services as datasets
    from datasets.models import Category
    from labeling import services

    images = [datasets.ingest_one(make_photo(*size, seed=seed + i), source=source, category=category or "food").image
              for i in range(photos)]
    project = services.create_project(name, created_by=users["planner"], description="떡볶이, 순대, 튀김 사진에 자연스러운 코멘트를 달아 주세요.",
                                      categories=Category.objects.filter(slug=category) if category else ())
    services.sync_project_images(project)
    services.add_member(project, users["labeler"], cap_override=cap)
    services.save_example(project, images[0], note="첫 반응은 짧고 자연스럽게", comments=[
        {"comment_type": "reaction", "text": EXAMPLE_TEXT, "verdict": "good", "why": "사진을 보고 바로 나온 말 같아요."},
        {"comment_type": "specific", "text": "음식이 접시에 담겨 있습니다", "verdict": "bad", "why": "설명문이에요. 대화체로 써 주세요."},
    ])
    services.publish_guideline(
        project, "# 코멘트 가이드\n\n- 사진을 보고 **친구에게 말하듯** 써 주세요.\n- 사진에 없는 것은 쓰지 마세요.\n",
        published_by=users["planner"],
    )
    return project


def assignment_id(page) -> str:
    return page.locator("#label-app").get_attribute("data-assignment")


def page_state(page) -> dict | str:
    return page.evaluate("""() => {
        const app = document.getElementById('label-app');
        if (!app) return document.title;
        const error = document.getElementById('task-error');
        return {state: app.dataset.state, assignment: app.dataset.assignment,
                toast: document.getElementById('toast').textContent,
                error: error.hidden ? '' : document.getElementById('task-error-text').textContent,
                submit_not_ready: document.getElementById('submit-btn').getAttribute('aria-disabled'),
                rules: [...document.querySelectorAll('.rule-msgs li')].map(li => li.dataset.code)};
    }""")


def not_ready(page) -> bool:
    """The submit button is marked not ready (texts break a rule; pressing it says what to fix)."""
    return page.locator("#submit-btn").get_attribute("aria-disabled") == "true"


def until(page, condition: str):
    """Wait for a JS condition; on a timeout, say where the page stood."""
    try:
        page.wait_for_function(condition, timeout=30_000)
    except Exception as exc:
        raise AssertionError(f"{condition}\npage state: {page_state(page)}") from exc


def visible(page, selector: str):
    until(page, f"() => {{ const e = document.querySelector({selector!r}); return e && e.offsetParent !== null; }}")


def moved_on(page, previous: str):
    until(page, f"() => document.getElementById('label-app').dataset.assignment !== '{previous}'")


def wait_photo(page):
    until(page, "() => { const i = document.getElementById('photo'); return i && !i.hidden && i.complete && i.naturalWidth > 0; }")


def settle(page):
    """Let requests the page still has in flight (a top-up) finish before the test's data goes."""
    page.wait_for_load_state("networkidle")


def no_horizontal_scroll(page, width=PHONE[0]):
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_labeler_works_through_a_project_on_a_phone(new_page, users, source, login, shot):
    from labeling.models import Assignment, AssignmentStatus, Comment

    project = make_project(users, source, photos=6, cap=2)
    page = new_page(viewport=PHONE)
    image_requests: list[str] = []
    page.on("request", lambda r: image_requests.append(r.url) if "/media/images/" in r.url else None)

    # My projects: done / cap and a big start button.
    login(page, "labeler1")
    page.wait_for_url(re.compile(r"/label/$"))
    card = page.locator(f'[data-project="{project.pk}"]')
    assert card.locator(".done-cap").inner_text().replace(" ", "") == "0/2"
    assert "시작" in card.locator(".start-btn").inner_text() or "Start" in card.locator(".start-btn").inner_text()
    no_horizontal_scroll(page)
    shot(page, "labeler-home-projects-phone")
    card.locator(".start-btn").click()
    page.wait_for_url(re.compile(rf"/label/{project.pk}/$"))

    # The photo, large but leaving the first text box on screen; the next one loads behind it.
    wait_photo(page)
    box = page.locator("#photo").bounding_box()
    assert box["width"] > 350 and box["height"] <= 844 * 0.55 + 1
    assert page.locator("#ct-reaction").bounding_box()["y"] < 844
    assert page.locator("#progress-done").inner_text() == "0" and page.locator("#progress-cap").inner_text() == "2"
    for sel in ("#submit-btn", "#skip-btn", "#report-btn", "#examples-btn", ".label-back"):
        assert page.locator(sel).bounding_box()["height"] >= 44, sel
    assert page.locator("label[for=ct-reaction]").count() == 1 and page.locator("label[for=ct-specific]").count() == 1
    no_horizontal_scroll(page)
    shot(page, "label-task-phone")

    # Too short: the live counter, the rule message and a submit marked not ready.
    page.fill("#ct-reaction", "와우")
    counter = page.locator("#ct-reaction-count")
    assert counter.inner_text().startswith("2 /") and "3" in counter.inner_text()
    assert "is-short" in counter.get_attribute("class")
    assert page.locator('#ct-reaction-msgs li[data-code="too_short"]').is_visible()
    assert not_ready(page)
    page.fill("#ct-specific", "ㅋㅋㅋ")
    assert page.locator('#ct-specific-msgs li[data-code="jamo_or_emoji_only"]').count() == 1
    page.fill("#ct-specific", "여기서 샀어요 010-1234-5678")
    assert page.locator('#ct-specific-msgs li[data-code="phone"]').count() == 1
    page.locator("#ct-specific").blur()
    shot(page, "label-rules-phone")
    page.fill("#ct-reaction", EXAMPLE_TEXT + "!")
    assert page.locator('#ct-reaction-msgs li[data-code="copied_example"]').count() == 1
    assert not_ready(page)

    # Examples, one tap away: a bottom sheet with good and bad comments.
    page.click("#examples-btn")
    sheet = page.locator("#examples-dialog")
    assert sheet.is_visible()
    assert sheet.locator(".verdict-good q").inner_text() == EXAMPLE_TEXT
    assert sheet.locator(".verdict-bad .lx-why").count() == 1
    sheet.locator("img").first.evaluate("i => i.decode()")
    shot(page, "label-examples-phone")
    sheet.locator(".sheet-close").click()
    assert not sheet.is_visible()

    # Skip: the next photo (already loaded) shows, nothing counted.
    first = assignment_id(page)
    page.click("#skip-btn")
    moved_on(page, first)
    wait_photo(page)
    assert page.locator("#ct-reaction").input_value() == ""
    assert Assignment.objects.get(pk=first).status == AssignmentStatus.SKIPPED
    assert page.locator("#progress-done").inner_text() == "0"

    # Report with a reason and a note.
    second = assignment_id(page)
    page.click("#report-btn")
    dialog = page.locator("#report-dialog")
    assert dialog.is_visible()
    assert dialog.locator("input[name=reason]").count() == 3
    dialog.locator("input[value=broken]").check()
    dialog.locator("#report-note").fill("사진이 반쯤 잘려 있어요")
    shot(page, "label-report-phone")
    dialog.locator("#report-send").click()
    moved_on(page, second)
    reported = Assignment.objects.get(pk=second)
    assert (reported.status, reported.report_reason, reported.report_note) == (
        AssignmentStatus.REPORTED, "broken", "사진이 반쯤 잘려 있어요")

    # Valid texts; the photo after this one is leased and loaded before the submit.
    wait_photo(page)
    third = assignment_id(page)
    until(page, "() => [...document.querySelectorAll('#preload img')].some(i => i.complete && i.naturalWidth > 0)")
    ahead = page.evaluate("() => { const i = [...document.querySelectorAll('#preload img')].find(i => i.complete && i.naturalWidth > 0); return [i.dataset.assignment, i.src]; }")
    requested_before_submit = list(image_requests)
    assert ahead[1] in requested_before_submit
    page.fill("#ct-reaction", "와 떡볶이 국물 진하다!")
    page.fill("#ct-specific", "떡볶이 위에 올라간 삶은 계란이 먹음직스러워요")
    assert "is-ok" in page.locator("#ct-specific-count").get_attribute("class")
    assert page.locator("#ct-specific-msgs li").count() == 0
    assert not not_ready(page)
    shot(page, "label-valid-phone")
    page.locator("#ct-specific").press("Control+Enter")
    # The next photo is on screen at once: the same, already decoded element.
    until(page, f"() => document.getElementById('label-app').dataset.assignment === '{ahead[0]}'")
    assert page.evaluate("() => { const i = document.getElementById('photo'); return i.complete && i.naturalWidth > 0 && !i.hidden; }")
    assert page.locator("#photo").get_attribute("src") == ahead[1]
    assert page.locator("#progress-done").inner_text() == "1"
    assert page.locator("#ct-reaction").input_value() == ""
    stored = Comment.objects.filter(assignment_id=third).order_by("comment_type__position")
    assert [c.text for c in stored] == ["와 떡볶이 국물 진하다!", "떡볶이 위에 올라간 삶은 계란이 먹음직스러워요"]
    assert {c.guideline_version for c in stored} == {1}
    shot(page, "label-next-photo-phone")

    # The server is the judge: after a reload the page no longer remembers my earlier texts,
    # so a repeat passes the live check and the server's refusal shows under its box.
    page.reload()
    wait_photo(page)
    assert assignment_id(page) == ahead[0]  # my own lease comes back
    page.fill("#ct-reaction", "와 떡볶이 국물 진하다!")
    page.fill("#ct-specific", "순대 옆에 튀김이 바삭해 보여서 배고파져요")
    page.keyboard.press("Control+Enter")
    visible(page, '#ct-reaction-msgs li.from-server[data-code="own_repeat"]')
    assert page.locator("#ct-specific").input_value() == "순대 옆에 튀김이 바삭해 보여서 배고파져요"  # text kept
    assert not_ready(page)
    shot(page, "label-server-refusal-phone")
    page.fill("#ct-reaction", "튀김 바삭함 미쳤다")
    assert not not_ready(page)

    # The cap: a clear full page with thanks and a way home.
    page.keyboard.press("Control+Enter")
    visible(page, "#state-cap_reached")
    assert page.locator("#task").is_hidden()
    assert page.locator("#state-cap_reached [data-done]").inner_text() == "2"
    assert page.locator("#progress-done").inner_text() == "2"
    no_horizontal_scroll(page)
    shot(page, "label-cap-reached-phone")

    # History: my two sets, newest first, with their photos.
    page.click("#state-cap_reached a[href$='/history/']")
    page.wait_for_url(re.compile(rf"/label/{project.pk}/history/$"))
    items = page.locator(".history-item")
    assert items.count() == 2
    assert "튀김 바삭함 미쳤다" in items.nth(0).inner_text()
    assert "와 떡볶이 국물 진하다!" in items.nth(1).inner_text()
    until(page, "() => [...document.querySelectorAll('.history-item img')].every(i => i.complete && i.naturalWidth > 0)")
    no_horizontal_scroll(page)
    shot(page, "label-history-phone")

    # The guideline with its examples.
    page.click(".subpage-tabs a[href$='/guide/']")
    page.wait_for_url(re.compile(rf"/label/{project.pk}/guide/$"))
    assert page.locator("#guide-body h1").inner_text() == "코멘트 가이드"
    assert page.locator("#guide-body strong").inner_text() == "친구에게 말하듯"
    assert page.locator("#guide-examples .verdict-good").count() == 1
    page.locator("#guide-examples img").first.evaluate("i => i.decode()")
    no_horizontal_scroll(page)
    shot(page, "label-guide-phone")

    # Home now says the goal is reached.
    page.goto("/label/")
    assert page.locator(f'[data-project="{project.pk}"].is-finished').count() == 1
    shot(page, "labeler-home-finished-phone")


def test_no_work_page_and_retry(new_page, users, source, login, shot):
    from datasets import services as datasets
    from labeling import services

    project = make_project(users, source, photos=1, cap=10, name="사진 한 장", seed=950)
    page = new_page(viewport=PHONE)
    login(page, "labeler1")
    page.goto(f"/label/{project.pk}/")
    wait_photo(page)
    page.click("#skip-btn")
    visible(page, "#state-no_work")
    assert page.locator("#task").is_hidden()
    no_horizontal_scroll(page)
    shot(page, "label-no-work-phone")

    # A planner adds photos; "try again" picks them up.
    datasets.ingest_one(make_photo(640, 480, seed=960), source=source, category="food")
    services.sync_project_images(project)
    page.click("#nowork-retry")
    wait_photo(page)
    assert page.locator("#task").is_visible()
    assert page.locator("#state-no_work").is_hidden()
    settle(page)


def test_desktop_layout_network_failure_and_lost_lease(new_page, users, source, login, shot):
    from labeling.models import Comment

    project = make_project(users, source, photos=4, cap=10, name="Desktop", seed=970)
    page = new_page(viewport=(1280, 900))
    # Submits pass through this route; a step below makes them fail. It is set up before the
    # page loads, so interception is on before any request is made.
    submits = {"mode": "pass"}

    def on_submit(route):
        if submits["mode"] == "abort":
            route.abort()
        elif submits["mode"] == "lease_lost":
            route.fulfill(status=409, content_type="application/json",
                          body='{"code": "lease_lost", "detail": "Your time for this photo ran out."}')
        else:
            route.continue_()

    page.route("**/submit/", on_submit)
    login(page, "labeler1")
    page.goto(f"/label/{project.pk}/")
    wait_photo(page)
    photo, form = page.locator("#photo-frame").bounding_box(), page.locator("#comment-form").bounding_box()
    assert form["x"] >= photo["x"] + photo["width"]  # photo left, texts right
    assert page.locator(".kbd-hint").is_visible()
    assert page.evaluate("document.activeElement.id") == "ct-reaction"  # ready to type on a keyboard
    page.keyboard.type("와 이건 진짜 맛있겠다")
    page.keyboard.press("Enter")  # Enter in the first box moves to the next one
    assert page.evaluate("document.activeElement.id") == "ct-specific"
    assert page.locator("#ct-reaction").input_value() == "와 이건 진짜 맛있겠다"
    page.fill("#ct-specific", "떡볶이 소스가 윤기 나고 어묵이 두툼해 보여요")
    shot(page, "label-task-desktop")

    # The network fails: the texts stay, a retry button sends the same set once.
    first = assignment_id(page)
    submits["mode"] = "abort"
    page.keyboard.press("Control+Enter")
    visible(page, "#task-error")
    assert page.locator("#ct-reaction").input_value() == "와 이건 진짜 맛있겠다"
    assert assignment_id(page) == first
    shot(page, "label-network-error-desktop")
    submits["mode"] = "pass"
    page.click("#retry-btn")
    moved_on(page, first)
    assert Comment.objects.filter(assignment_id=first).count() == 2
    assert page.locator("#task-error").is_hidden()

    # The lease was lost meanwhile (say, after a long break): the page says so and moves on.
    second = assignment_id(page)
    submits["mode"] = "lease_lost"
    page.fill("#ct-reaction", "순대 색깔 좋다")
    page.fill("#ct-specific", "순대 옆에 간이랑 허파도 같이 나왔네요")
    page.click("#submit-btn")
    moved_on(page, second)
    assert "Your time for this photo ran out." in page.locator("#toast").inner_text()
    submits["mode"] = "pass"
    wait_photo(page)

    # English via the switcher: the live messages follow.
    page.click("button.lang[value=en]")
    wait_photo(page)
    page.fill("#ct-reaction", "ㅋㅋ")
    assert page.locator("#ct-reaction-count").inner_text() == "2 / min. 3"
    assert page.locator('#ct-reaction-msgs li[data-code="too_short"]').inner_text() == \
        "Too short: at least 3 characters (now 2)."
    page.click("#examples-btn")
    assert page.locator("#examples-dialog").is_visible()
    page.locator("#examples-dialog img").first.evaluate("i => i.decode()")
    shot(page, "label-examples-desktop-en")
    page.keyboard.press("Escape")
    page.click("button.lang[value=ko]")
    wait_photo(page)
    settle(page)


# --- issue 8: zoom, both boxes on a phone, shortcuts, the emptied box, a second tab ------------

def viewport_shot(page, name: str):
    """The screen as the labeler sees it (not the full page): test-artifacts/screenshots/name.png."""
    from tests.browser.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def inside(box, width, height) -> bool:
    return box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= width + 0.5 and box["y"] + box["height"] <= height + 0.5


@pytest.mark.parametrize("viewport", [(375, 667), (390, 844)], ids=["375x667", "390x844"])
def test_both_boxes_and_the_photo_fit_a_phone_and_the_photo_zooms(new_page, users, source, login, viewport):
    portrait = make_project(users, source, photos=2, cap=10, name="세로 사진", seed=1200, size=(600, 900), category="people")
    landscape = make_project(users, source, photos=2, cap=10, name="가로 사진", seed=1300, size=(900, 600), category="places")
    width, height = viewport
    page = new_page(viewport=viewport)
    login(page, "labeler1")
    for project, kind in ((portrait, "portrait"), (landscape, "landscape")):
        page.goto(f"/label/{project.pk}/")
        wait_photo(page)
        page.evaluate("window.scrollTo(0, 0)")
        viewport_shot(page, f"label-fit-{kind}-{width}x{height}")
        photo = page.locator("#photo").bounding_box()
        bar = page.locator(".task-actions").bounding_box()
        assert inside(photo, width, height) and photo["height"] >= 140, (kind, photo)
        natural = page.evaluate("() => { const i = document.getElementById('photo'); return [i.naturalWidth, i.naturalHeight]; }")
        assert (natural[1] > natural[0]) == (kind == "portrait")
        for sel in ("#ct-reaction", "#ct-specific"):
            box = page.locator(sel).bounding_box()
            # On screen without scrolling, with the photo, and not under the sticky buttons.
            assert inside(box, width, height) and box["y"] + box["height"] <= bar["y"] + 0.5, (kind, sel, box, bar)
        assert inside(bar, width, height)

        # A focused second box stays clear of the sticky buttons.
        page.focus("#ct-specific")
        page.keyboard.type("두 번째 칸")
        box, bar = page.locator("#ct-specific").bounding_box(), page.locator(".task-actions").bounding_box()
        assert box["y"] + box["height"] <= bar["y"] + 0.5 and box["y"] >= 0
        page.fill("#ct-specific", "")

        # A keyboard that takes 300 px (a page resized to what is left): the focused box still shows.
        page.set_viewport_size({"width": width, "height": height - 300})
        page.evaluate("document.activeElement.blur()")
        page.focus("#ct-specific")
        page.wait_for_timeout(100)
        box, bar = page.locator("#ct-specific").bounding_box(), page.locator(".task-actions").bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= min(bar["y"], height - 300) + 0.5, (box, bar)
        viewport_shot(page, f"label-keyboard-{kind}-{width}x{height}")
        page.set_viewport_size({"width": width, "height": height})
        page.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")

        # Tap the photo: full screen; Escape closes. The corner button too; back closes. A tap closes.
        zoom = page.locator("#zoom-dialog")
        page.click("#photo")
        assert zoom.is_visible()
        until(page, "() => { const i = document.getElementById('zoom-img'); return i.complete && i.naturalWidth > 0; }")
        big = page.locator("#zoom-img").bounding_box()
        assert big["width"] >= width - 1 or big["height"] >= height - 1  # fills the screen one way
        assert big["width"] > photo["width"] or big["height"] > photo["height"]
        assert page.locator("#zoom-img").get_attribute("src") == page.locator("#photo").get_attribute("src")
        viewport_shot(page, f"label-zoom-{kind}-{width}x{height}")
        page.keyboard.press("Escape")
        assert not zoom.is_visible()
        url = page.url
        page.click("#zoom-btn")
        assert zoom.is_visible()
        page.go_back()
        until(page, "() => !document.getElementById('zoom-dialog').open")
        assert page.url == url and page.locator("#photo").is_visible()
        page.click("#photo")
        assert zoom.is_visible()
        page.mouse.click(width / 2, height / 2)
        until(page, "() => !document.getElementById('zoom-dialog').open")
        assert page.url == url
        settle(page)


def test_shortcuts_the_help_overlay_and_the_emptied_box(new_page, users, source, login, shot):
    from labeling.models import Assignment, AssignmentStatus, ProjectMember, RuleHit

    project = make_project(users, source, photos=5, cap=10, name="단축키", seed=1400)
    page = new_page(viewport=PHONE)
    login(page, "labeler1")
    page.goto(f"/label/{project.pk}/")
    wait_photo(page)

    # "?" lists every shortcut in a dialog; Escape closes it.
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("Shift+Slash")
    keys = page.locator("#keys-dialog")
    assert keys.is_visible()
    assert page.evaluate("document.getElementById('keys-dialog').matches(':modal')")
    listed = keys.inner_text()
    for key in ("Ctrl", "Enter", "S", "R", "E", "Z", "?", "Esc", "Alt"):
        assert key in listed, key
    assert keys.locator("tr").count() == 8
    shot(page, "label-shortcuts-phone")
    page.keyboard.press("Escape")
    assert not keys.is_visible()

    # E: the examples; R: the report sheet (Escape closes both).
    page.keyboard.press("e")
    assert page.locator("#examples-dialog").is_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    assert page.locator("#report-dialog").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#report-dialog").is_visible()
    page.keyboard.press("z")
    assert page.locator("#zoom-dialog").is_visible()
    page.keyboard.press("Escape")

    # While typing, a letter is a letter; with Alt it is the shortcut.
    first = assignment_id(page)
    page.focus("#ct-reaction")
    page.keyboard.type("s")
    assert page.locator("#ct-reaction").input_value() == "s" and assignment_id(page) == first
    page.keyboard.press("Alt+e")
    assert page.locator("#examples-dialog").is_visible()
    page.keyboard.press("Escape")

    # A box emptied after typing: the neutral counter, no red message.
    page.fill("#ct-reaction", "와우")
    assert page.locator('#ct-reaction-msgs li[data-code="too_short"]').is_visible()
    page.fill("#ct-reaction", "")
    assert page.locator("#ct-reaction-msgs li").count() == 0
    assert "has-error" not in page.locator("#ct-reaction-field").get_attribute("class")
    assert page.locator("#ct-reaction").get_attribute("aria-invalid") == "false"
    shot(page, "label-emptied-box-phone")

    # Pressing submit with texts that break rules says what to fix, and the attempt is counted
    # once (the same texts again are the same attempt).
    page.fill("#ct-specific", "짧다")
    reports = []
    page.on("request", lambda r: reports.append(r.url) if r.url.endswith("/blocked/") else None)
    # (aria-disabled: pressable by people; Playwright counts it as disabled unless forced)
    # Wait for the page's report of the attempt to be answered before reading the count: a
    # fire-and-forget fetch that "networkidle" does not wait for once the page has loaded (and the
    # in-memory SQLite database is shared with the live server's thread, which locks the member's
    # table while it counts it).
    with page.expect_response(lambda r: r.url.endswith("/blocked/") and r.request.method == "POST") as answered:
        page.click("#submit-btn", force=True)
    assert answered.value.ok
    msgs = page.locator("#ct-reaction-msgs li")
    assert msgs.count() == 1 and "0" not in msgs.inner_text() and "3" in msgs.inner_text()
    member = ProjectMember.objects.get(project=project, user=users["labeler"])
    page.click("#submit-btn", force=True)  # the same texts: the same attempt, not reported again
    page.evaluate("() => new Promise((done) => setTimeout(done, 0))")  # the click's handlers have run
    assert len(reports) == 1, reports
    member.refresh_from_db()
    assert member.rejection_count == 1
    assert dict(RuleHit.objects.filter(member=member).values_list("code", "count")) == {"too_short": 1}
    shot(page, "label-blocked-submit-phone")

    # Alt+S skips from inside a box; S alone skips outside one.
    page.focus("#ct-reaction")
    page.keyboard.press("Alt+s")
    moved_on(page, first)
    assert Assignment.objects.get(pk=first).status == AssignmentStatus.SKIPPED
    wait_photo(page)
    second = assignment_id(page)
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("s")
    moved_on(page, second)
    assert Assignment.objects.get(pk=second).status == AssignmentStatus.SKIPPED

    # The saved message sits clear of the top bar, in its own colours.
    wait_photo(page)
    page.fill("#ct-reaction", "와 맛있겠다")
    page.fill("#ct-specific", "떡볶이 국물이 걸쭉해서 밥 비벼 먹고 싶어요")
    page.keyboard.press("Control+Enter")
    until(page, "() => document.getElementById('toast').classList.contains('show')")
    page.wait_for_timeout(300)
    toast, top = page.locator("#toast").bounding_box(), page.locator(".topbar").bounding_box()
    assert toast["y"] >= top["y"] + top["height"]
    colours = page.evaluate("""() => [getComputedStyle(document.getElementById('toast')).backgroundColor,
                                      getComputedStyle(document.querySelector('.topbar')).backgroundColor]""")
    assert colours[0] != colours[1]
    viewport_shot(page, "label-saved-toast-phone")
    settle(page)

    # The planner's dashboard counts the blocked attempt, by rule.
    planner = new_page(viewport=(1280, 900))
    login(planner, "planner1")
    planner.goto(f"/projects/{project.pk}/")
    cell = planner.locator('tr[data-labeler="labeler1"] .rule-hits li[data-rule="too_short"]')
    assert cell.locator(".num").inner_text() == "1"
    assert planner.locator('#rule-totals li[data-rule="too_short"] .num').inner_text() == "1"
    planner.locator("#labelers").screenshot(path=str(__import__("tests.browser.conftest", fromlist=["x"]).SCREENSHOTS / "planner-rule-hits.png"))


def test_a_second_tab_says_the_photo_was_already_submitted(new_page, users, source, login, shot):
    from labeling.models import Comment

    project = make_project(users, source, photos=4, cap=10, name="두 개의 탭", seed=1500)
    tab1 = new_page(viewport=PHONE)
    login(tab1, "labeler1")
    tab1.goto(f"/label/{project.pk}/")
    wait_photo(tab1)
    tab2 = tab1.context.new_page()
    tab2.goto(f"/label/{project.pk}/")
    wait_photo(tab2)
    shown = assignment_id(tab1)
    assert assignment_id(tab2) == shown

    tab1.fill("#ct-reaction", "와 떡볶이다")
    tab1.fill("#ct-specific", "떡볶이 위에 깨가 솔솔 뿌려져 있어요")
    tab1.keyboard.press("Control+Enter")
    moved_on(tab1, shown)

    tab2.fill("#ct-reaction", "순대 맛있겠다")
    tab2.fill("#ct-specific", "순대 옆에 간이 같이 나와서 좋아요")
    tab2.keyboard.press("Control+Enter")
    visible(tab2, "#already-box")
    box = tab2.locator("#already-box")
    assert "와 떡볶이다" in box.inner_text() and "떡볶이 위에 깨가 솔솔 뿌려져 있어요" in box.inner_text()
    assert "순대" not in box.inner_text()
    moved_on(tab2, shown)  # and it went on to the next photo
    assert [c.text for c in Comment.objects.filter(assignment_id=shown).order_by("comment_type__position")] == \
        ["와 떡볶이다", "떡볶이 위에 깨가 솔솔 뿌려져 있어요"]
    shot(tab2, "label-already-submitted-phone")
    tab2.click("#already-ok")
    assert box.is_hidden()
    settle(tab1)
    settle(tab2)
