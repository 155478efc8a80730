"""Stored photos on local disk (no S3), served only to people allowed to see them.

The URLs stay what the storage makes them (`/media/images/ab/cd/<uuid>.jpg`, `/media/thumbs/...`),
so every page, the API and published guidelines keep printing `image.file.url`; this view, not
the web server, answers them:

- Planners, ML engineers and admins see the whole catalogue: no query beyond the session.
- A labeler sees a photo of a project where they are an active member, or an example of that
  project's published guideline: one indexed EXISTS (labeling.selectors.labeler_may_see_image),
  asked again on every request, so removing a labeler ends their links at once.
- Anyone else: no session -> the login page; a bad API token -> 401; signed in but not allowed ->
  404, which does not tell whether the photo exists. Nothing but catalogue files is served
  (staged uploads and manifests live under the same folder).

Why a check per request rather than signed URLs: the URLs stay stable, so browsers cache the
photos (privately) and frozen guideline snapshots keep working; a signed URL would change on
every page, need the user at every place that prints one, and keep working after removal until
it expires. The check costs one small query per photo fetched, and nothing on the pages.

Who sends the bytes: Django streams the file in the embedded default; in production the web
server does, after the check, from an `internal` location (nginx: MEDIA_ACCEL_REDIRECT_PREFIX,
the answer carries `X-Accel-Redirect`) or by path (Apache mod_xsendfile, lighttpd:
MEDIA_SENDFILE_HEADER names the header, e.g. `X-Sendfile`).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponse
from django.views import static
from django.views.decorators.http import require_safe
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header

from accounts.authentication import ApiTokenAuthentication
from accounts.models import Role

# Exactly the names datasets.models.image_path and thumb_path give: nothing else is served.
CATALOGUE_FILE = re.compile(
    r"(?:images|thumbs)/[0-9a-f]{2}/[0-9a-f]{2}/"
    r"(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jpg"
)


# Which photos a labeler may see is labeling's to say; labeling builds on datasets, not the
# reverse, so it registers its rule when it loads (labeling.apps). None: labelers see no photo.
_labeler_access: Callable[[object, str], bool] | None = None


def register_labeler_access(rule: Callable[[object, str], bool] | None) -> None:
    global _labeler_access
    _labeler_access = rule


def may_see(user, image_id: str) -> bool:
    if user.has_role(Role.PLANNER, Role.ENGINEER):  # admins too
        return True
    if not user.has_role(Role.LABELER) or _labeler_access is None:
        return False
    return _labeler_access(user, image_id)


def _user(request):
    """The session's user, or the API token's for custom clients (a mobile app sends the same
    `Authorization: Token <key>` it uses for the API). Raises AuthenticationFailed."""
    if get_authorization_header(request):
        found = ApiTokenAuthentication().authenticate(request)
        if found is not None:
            return found[0]
    return request.user


@require_safe
def serve_media(request, path: str):
    try:
        user = _user(request)
    except exceptions.AuthenticationFailed as exc:
        response = HttpResponse(str(exc.detail), status=401, content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = "Token"
        return response
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    match = CATALOGUE_FILE.fullmatch(path)
    if match is None or not may_see(user, match["id"]):
        raise Http404
    response = _send(request, path)
    # The photo's bytes never change under its name; the browser may keep it, no shared cache may.
    response["Cache-Control"] = f"private, max-age={settings.MEDIA_CACHE_SECONDS}"
    return response


def _send(request, path: str) -> HttpResponse:
    prefix = settings.MEDIA_ACCEL_REDIRECT_PREFIX
    header = settings.MEDIA_SENDFILE_HEADER
    if prefix:
        response = HttpResponse(content_type="image/jpeg")
        response["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + quote(path)
        return response
    if header:
        response = HttpResponse(content_type="image/jpeg")
        response[header] = str(Path(settings.MEDIA_ROOT) / path)
        return response
    # Django's static view: a safe join under MEDIA_ROOT, Last-Modified and 304s.
    return static.serve(request, path, document_root=settings.MEDIA_ROOT)
