"""schemathesis against the live OpenAPI schema (/api/schema/), once per role with that role's API
token: every operation gets generated requests, valid and invalid (bad types, missing fields,
NUL characters, huge numbers), and every answer must be no 5xx and conform to the schema (a
documented status code, its content type and its body schema).

In process, through the WSGI application (no server to start), inside the test's database
transaction, with a fixed seed and a bounded number of examples per operation. Run it alone:
`.venv/bin/pytest -q tests/test_api_fuzz.py`; FUZZ_EXAMPLES=N draws more examples per operation and
FUZZ_SEED=N other ones, to look further than CI does.
"""
from __future__ import annotations

import os
import zlib

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts import services as accounts
from datasets.models import Category, ImportItem, ImportJob, Subcategory
from labeling import external
from labeling import services as labeling
from labeling.models import GuidelineExample
from labeling.snapshots import freeze_snapshot

from .conftest import ROLES
from .test_api import image_row
from .test_labeling_api import GOOD

SEED = int(os.environ.get("FUZZ_SEED", "9"))  # fixed: every run sends the same requests
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))  # per operation, phase and role
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Every role gets the fuzzing phase (random valid and invalid requests). The coverage phase
# (deterministic boundary values and each kind of invalid value, for every parameter and field)
# costs as much again for one role, so it runs for the admin alone, who passes every permission
# check and so reaches furthest; PUT is left to the fuzzing phase (PATCH takes the same fields).
COVERAGE_ROLE = "admin"
# Values that broke this API before (issue 9) or break APIs like it, mixed into generated strings
# and integers: random generation alone rarely draws them within the budget.
DICTIONARIES = {
    "string": {"values": [
        "\x00", "fo\x00od", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2020-01-01T00:00:00-19:52",
        "99999999999999999999", "-1", "²", "1e400", "NaN", "../../etc/passwd", "javascript:alert(1)", "%00",
    ]},
    "integer": {"values": [2**63, -(2**63) - 1, 10**30, 2**31, 0, -1]},
}


class World:
    """The rows the fuzzed requests can hit: generated path parameters are often replaced with
    the id of a real row of the right kind, so requests reach past the 404."""

    def __init__(self, users, source):
        planner, labeler = users["planner"], users["labeler"]
        food = Category.objects.get(slug="food")
        sub = Subcategory.objects.filter(category=food).first()
        images = [image_row(source, n, category=food, subcategory=sub if n % 2 else None,
                            original_url="" if n % 2 else f"https://example.com/{n}.jpg") for n in range(6)]
        job = ImportJob.objects.create(source=source, kind="upload", created_by=planner, status="done", total=2,
                                       processed=2, accepted=1, refused=1)
        ImportItem.objects.create(job=job, position=0, name="a.jpg", outcome="accepted", image=images[0])
        ImportItem.objects.create(job=job, position=1, name="b.txt", outcome="refused", reason="Not an image.")

        project = labeling.create_project("fuzz", created_by=planner)
        labeling.sync_project_images(project)
        labeling.add_member(project, labeler)
        labeling.save_example(project, images[0], note="a photo", comments=[
            {"comment_type": "reaction", "text": "와 맛있겠다", "verdict": "good", "why": "natural"}])
        labeling.publish_guideline(project, "# Guide\n\nWrite naturally.", published_by=planner)
        done, reported, *open_leases = labeling.next_assignments(project, labeler, 4)
        labeling.submit(done, labeler, GOOD)  # comments exist: the project and its types stay (409)
        labeling.report(reported, labeler, "broken", "it is grey")
        message = labeling.send_labeler_message(project, labeler, "메시지", sent_by=planner)

        snapshot = freeze_snapshot("fuzz", projects=[project], min_sets=1)
        comment_import = external.start_comment_import(
            project, data="path,comment_type,text\nnowhere.jpg,reaction,와 맛있겠다\n", fmt="csv", source_name="fuzz",
            photo_source=source, trusted=True, enqueue=False)
        external.run_comment_import(comment_import.pk)

        self.tokens = {role: accounts.create_token(user, f"fuzz {role}") for role, user in users.items()}
        spare = {role: accounts.create_token(user, "spare")[0].pk for role, user in users.items()
                 if role != "labeler"}
        self.ids = {
            "assignments": [done.pk, reported.pk, *(a.pk for a in open_leases)],
            "categories": [food.pk],
            "subcategories": [sub.pk] if sub else [],
            "licences": [source.default_licence.code],
            "sources": [source.pk],
            "images": [str(i.pk) for i in images],
            "imports": [job.pk],
            "projects": [project.pk],
            "comment-types": list(project.comment_types.values_list("pk", flat=True)),
            "examples": list(GuidelineExample.objects.filter(project=project).values_list("pk", flat=True)),
            "members": [labeler.pk],
            "reports": [reported.pk],
            "tokens": list(spare.values()),
            "snapshots": [snapshot.pk],
            "comment-imports": [comment_import.pk],
            "labelers": [labeler.pk],
            "messages": [message.pk],
        }
        self.token_ids = {token.pk for token, _key in self.tokens.values()}
        self.spare = spare

    def aim(self, case) -> None:
        """Point some path parameters at real rows. The choice follows the generated value, so
        it is as reproducible as the seed."""
        segments = case.path.strip("/").split("/")
        for name, value in (case.path_parameters or {}).items():
            kind = segments[segments.index(f"{{{name}}}") - 1]
            known = self.ids.get(kind, [])
            pick = zlib.crc32(repr(value).encode()) % (len(known) + 1)
            if pick < len(known):
                case.path_parameters[name] = known[pick]
            if kind == "tokens" and case.path_parameters[name] in self.token_ids:
                # Revoking the token the fuzzer signs in with would end the run in 401s.
                case.path_parameters[name] = next(iter(self.spare.values()))


@pytest.fixture
def wsgi_app():
    # As Django's test client does: the request cycle must not close the test's connection
    # (its transaction holds every row the requests work on).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    handler = get_wsgi_application()

    def app(environ, start_response):
        # Each request in a savepoint, rolled back after a 5xx: in production a failed statement
        # fails one request; in the test's one transaction PostgreSQL would refuse every later
        # query, and one 500 would be reported as hundreds.
        savepoint = transaction.savepoint()
        answer = {}

        def capture(status, headers, exc_info=None):
            answer["status"] = status
            return start_response(status, headers, exc_info)

        result = handler(environ, capture)
        if answer.get("status", "500").startswith("5"):
            transaction.savepoint_rollback(savepoint)
        else:
            transaction.savepoint_commit(savepoint)
        return result

    try:
        yield app
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def world(db, users, source):
    return World(users, source)


@pytest.fixture(params=ROLES)
def role(request):
    return request.param


@pytest.fixture
def api_schema(world, wsgi_app, role):
    _token, key = world.tokens[role]
    operations = []
    if role == COVERAGE_ROLE:
        operations.append({"exclude-method": "PUT", "phases": {"coverage": {"enabled": True}}})
    config = schemathesis.Config.from_dict({
        "seed": SEED,
        "headers": {"Authorization": f"Token {key}"},
        "dictionaries": DICTIONARIES,
        # No shrinking: a failure is reported as found, which bounds the run's time too.
        "generation": {
            "max-examples": EXAMPLES, "mode": "all", "database": "none", "no-shrink": True,
            "dictionaries": {kind: {"dictionary": kind, "probability": 0.2} for kind in DICTIONARIES},
        },
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
        "operations": operations,
    })
    # The schema as the app serves it (it may ask for a sign-in: API_DOCS_PUBLIC).
    return schemathesis.openapi.from_wsgi(
        "/api/schema/", wsgi_app, config=config, headers={"Authorization": f"Token {key}"}
    )


# schemathesis 4.32's lazy loader renames the test node through `_nodeid`, which pytest 9.2 no
# longer has (nodes keep `_id`); the rename only labels subtests, so reads suffice.
if not hasattr(pytest.Function, "_nodeid"):
    pytest.Function._nodeid = property(lambda node: node.nodeid, lambda node, value: None)

schema = schemathesis.pytest.from_fixture("api_schema")


# Not measured for coverage: under the tracer schemathesis' own generation took two and a half
# times as long (the admin's run, about five minutes of each pass), and the other API tests reach
# the same views.
@pytest.mark.no_cover
# The marker its `world` fixture implies, said here so pytest-django orders it with the database
# tests: the suite's longest file then starts first in its process, not last.
@pytest.mark.django_db
@schema.parametrize()
def test_api_fuzz(case, world, role, users):
    world.aim(case)
    headers = None
    if case.path == "/api/auth/logout/":
        # Logout revokes the token it is sent with: give it one of its own.
        headers = {"Authorization": f"Token {accounts.create_token(users[role], 'logout')[1]}"}
    case.call_and_validate(headers=headers, checks=CHECKS)
