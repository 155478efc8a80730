"""Issue 8: an ordinary 403 or 404 is one log line, a 500 keeps its traceback."""
from __future__ import annotations

import io
import logging
import logging.config

import pytest
from django.test import Client


@pytest.fixture
def console(settings):
    """What settings.LOGGING's console handler writes, while the test runs. LOGGING is applied
    afresh: a Celery worker started by an earlier test replaces the root logger's handlers."""
    logging.config.dictConfig(settings.LOGGING)
    [handler] = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    stream = io.StringIO()
    old = handler.setStream(stream)
    yield stream
    handler.setStream(old)


def test_a_403_is_one_line_without_traceback(console, users):
    client = Client()
    client.force_login(users["labeler"])
    console.seek(0)
    console.truncate()  # the sign-in's own lines
    assert client.get("/datasets/quotas/").status_code == 403
    assert client.get("/datasets/no-such-page/").status_code == 404
    out = console.getvalue()
    assert "Forbidden (Permission denied): /datasets/quotas/" in out
    assert "Not Found: /datasets/no-such-page/" in out
    assert "Traceback" not in out and "PermissionDenied" not in out
    assert len(out.strip().splitlines()) == 2


def test_a_500_keeps_its_traceback(console):
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("django.request").error("Internal Server Error: /x/", exc_info=True,
                                                  extra={"status_code": 500})
    out = console.getvalue()
    assert "Internal Server Error: /x/" in out and "Traceback" in out and "RuntimeError: boom" in out


def test_django_logs_each_refusal_once():
    """Django's own console handler (on with DEBUG) would print the refusal again, traceback and
    all; Django's records reach only the filtered console."""
    assert logging.getLogger("django").handlers == []
    assert logging.getLogger("django.request").propagate
