"""The browser tests' own plumbing: a read right after a click sees the page the click loaded.

The page here arrives in two parts, half a second apart, the way a slow server or a busy CI
machine sends one. The browser commits the navigation on the first part, which is where
Playwright's click returns; the conftest's click then waits for the page's load event too.
Without that wait the read below finds the half page (no #late) and fails.
"""
import time

import pytest
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import path


def start(request):
    return HttpResponse('<!doctype html><html><body><a id="go" href="/slow/">go</a></body></html>')


def slow(request):
    def parts():
        yield '<!doctype html><html><body><p id="early">early</p>' + " " * 4096
        time.sleep(0.5)
        yield '<p id="late">late</p></body></html>'

    return StreamingHttpResponse(parts(), content_type="text/html")


urlpatterns = [path("start/", start), path("slow/", slow)]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.mark.urls(__name__)
@pytest.mark.once
def test_a_read_right_after_a_click_sees_the_whole_page_it_loaded(page):
    page.goto("/start/")
    page.click("#go")
    assert page.locator("#late").count() == 1
    page.goto("/start/")
    page.locator("#go").click()
    assert page.locator("p").all_inner_texts() == ["early", "late"]
