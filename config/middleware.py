"""Middleware of this project (settings.MIDDLEWARE)."""
from __future__ import annotations

from django.conf import settings
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from config.api import API_PREFIX, NUL_MESSAGE, has_nul


class RefuseNulMiddleware:
    """A NUL character in the URL path, the query string or a header answers 400, for pages and
    API alike: PostgreSQL refuses NUL in text, so a `?category=%00` that reached a filter or a
    slug lookup was a 500 (on SQLite it passed silently). Request bodies are the parsers' part
    (config.api for the API; Django's form fields refuse NUL themselves)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._carries_nul(request):
            message = str(NUL_MESSAGE)
            # The API answers JSON like every other API error; pages answer plain text.
            if request.path_info.startswith(API_PREFIX):
                return JsonResponse({"detail": message}, status=400)
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

    @staticmethod
    def _carries_nul(request) -> bool:
        if has_nul(request.path_info):
            return True
        for key, values in request.GET.lists():
            if has_nul(key) or any(has_nul(v) for v in values):
                return True
        return any(
            has_nul(value) for name, value in request.META.items()
            if name.startswith("HTTP_") and isinstance(value, str)
        )


class RequestSizeLimitMiddleware:
    """413 for a request body over its limit, judged by Content-Length before anything reads the
    body: the CSRF check reads a form body (files and all) before any view runs, and DRF reads JSON
    from the stream, past Django's own DATA_UPLOAD_MAX_MEMORY_SIZE check. Django never reads more
    than Content-Length, so the header binds.

    A signed-in user's multipart body (an import's photos and .zip archives) may reach
    UPLOAD_MAX_BYTES; every other body, anonymous uploads included, DATA_UPLOAD_MAX_MEMORY_SIZE.
    On /api/ a token header counts as signed in: DRF refuses a wrong token before it parses.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # what Django itself reads then: nothing
        small = settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # None: no limit, as in Django
        if length > settings.UPLOAD_MAX_BYTES or small is not None and length > small:
            # An import's upload: the only big body there is, and only from someone signed in.
            upload = request.content_type == "multipart/form-data" and self._signed_in(request)
            limit = settings.UPLOAD_MAX_BYTES
            if small is not None and not upload:
                limit = min(limit, small)
            if length > limit:
                return self._too_large(request, limit, upload)
        return self.get_response(request)

    @staticmethod
    def _signed_in(request) -> bool:
        if request.user.is_authenticated:
            return True
        if not request.path_info.startswith("/api/"):
            return False
        from accounts.authentication import ApiTokenAuthentication

        header = request.META.get("HTTP_AUTHORIZATION", "").split()
        return len(header) == 2 and header[0].lower() in ApiTokenAuthentication.keywords

    @staticmethod
    def _too_large(request, limit: int, upload: bool):
        size = filesizeformat(limit)
        if upload:
            message = _("The upload is too large: at most %(limit)s in one request. Split it into several "
                        "imports, or import from a server folder, an S3 prefix or a manifest.") % {"limit": size}
        else:
            message = _("The request is too large: at most %(limit)s.") % {"limit": size}
        if request.path_info.startswith("/api/"):
            return JsonResponse({"code": "too_large", "detail": message}, status=413)
        return render(request, "413.html", {"message": message}, status=413)
