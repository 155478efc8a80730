"""Plumbing every API view shares (settings.REST_FRAMEWORK and SPECTACULAR_SETTINGS point here).

- Parsers that refuse, with a 400, what would otherwise reach the database or the decoder and
  end in a 500: NUL characters anywhere in a body (PostgreSQL stores none, in text or jsonb; the
  path and query string are checked for every view by config.middleware) and JSON nested deeper
  than any request of this API needs (the decoder recurses: 50,000 brackets were a RecursionError).
- The pagination of every list, which answers a page number that is no number, or an absurd one,
  with a 400 instead of handing it to the database as an OFFSET.
- Service errors as responses, in one place: apps register their error classes
  (`register_service_error`, from their AppConfig.ready) and `exception_handler`
  (settings.REST_FRAMEWORK["EXCEPTION_HANDLER"]) answers each with its status and body; a Django
  ValidationError from any service is a 400 with field errors. Views just call services.
- `Conflict`, the 409 of a request that the current state refuses.
- The OpenAPI schema's shared error responses: every operation lists the 400/401/403/404 (415,
  429) it can answer, with shared error components.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.utils.translation import gettext_lazy as _
from django.views import defaults
from rest_framework import exceptions, pagination, parsers, permissions, serializers, status

API_PREFIX = "/api/"

BIGINT_MAX = 2**63 - 1
# Deeper than any body this API takes (a project with its comment types is 3 levels), far
# below the decoder's recursion limit.
MAX_JSON_DEPTH = 32
# Page numbers above this are refused before they become an OFFSET (PostgreSQL's bigint ends
# at 2**63 - 1; 500 rows a page times this stays far below it).
MAX_PAGE_NUMBER = 2**31 - 1

# Django's own message (ProhibitNullCharactersValidator), so its catalogues translate it.
NUL_MESSAGE = _("Null characters are not allowed.")
TOO_DEEP_MESSAGE = _("JSON parse error - nested more than %(depth)d levels deep.")
PAGE_MESSAGE = _("Give a page number: a whole number from 1 to %(max)d.")


def has_nul(value: str) -> bool:
    return "\x00" in value


def check_json(data, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise ParseError for a NUL in any key or string, or nesting deeper than `max_depth`.
    Iterative, so a deep document costs no Python recursion here either."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if has_nul(value):
                raise exceptions.ParseError(NUL_MESSAGE)
            continue
        if not isinstance(value, (dict, list)):
            continue
        if depth >= max_depth:
            raise exceptions.ParseError(TOO_DEEP_MESSAGE % {"depth": max_depth})
        if isinstance(value, dict):
            for key, item in value.items():
                if has_nul(key):
                    raise exceptions.ParseError(NUL_MESSAGE)
                stack.append((item, depth + 1))
        else:
            stack.extend((item, depth + 1) for item in value)


def check_form(*querydicts) -> None:
    """A NUL in a form field's name or value, or in an uploaded file's name, is a ParseError."""
    for qd in querydicts:
        for key, values in qd.lists():
            if has_nul(key):
                raise exceptions.ParseError(NUL_MESSAGE)
            for value in values:
                text = value if isinstance(value, str) else getattr(value, "name", "") or ""
                if has_nul(text):
                    raise exceptions.ParseError(NUL_MESSAGE)


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            # The C decoder guards its own recursion; past it nothing was built, so this is safe.
            raise exceptions.ParseError(TOO_DEEP_MESSAGE % {"depth": MAX_JSON_DEPTH}) from None
        check_json(data)
        return data


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        check_form(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        check_form(result.data, result.files)
        return result


def page_number(value, *, field: str = "page") -> int:
    """A page number from a query string, else a 400 that says what a page number is."""
    try:
        number = int(value)
    except (TypeError, ValueError):  # also a ValueError: more digits than int() takes from a str
        number = 0
    if not 1 <= number <= MAX_PAGE_NUMBER:
        raise exceptions.ValidationError({field: [PAGE_MESSAGE % {"max": MAX_PAGE_NUMBER}]})
    return number


class Pagination(pagination.PageNumberPagination):
    """The page size of settings.REST_FRAMEWORK, and `?page_size=` up to 500 for scripts. A page
    past the last one is DRF's 404; a page number that is no page number is a 400."""

    page_size_query_param = "page_size"
    max_page_size = 500

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"].update(minimum=1, maximum=MAX_PAGE_NUMBER)
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters

    def get_page_number(self, request, paginator):
        number = super().get_page_number(request, paginator)
        if number in self.last_page_strings:
            return number
        return page_number(number, field=self.page_query_param)


def file_url(field, context: dict) -> str:
    """A stored file's URL for a serializer: absolute when the serializer has the request ("" for
    no file). On S3 a signed one."""
    if not field:
        return ""
    request = context.get("request")
    return request.build_absolute_uri(field.url) if request else field.url


class IdConverter:
    """`<id:pk>` in URL patterns (registered in config.urls): a row id, digits that fit a bigint.
    Django's `<int:>` takes any number of digits, and a foreign-key lookup past bigint was a 500
    (OverflowError on SQLite); now such a URL matches nothing and answers 404."""

    regex = "[0-9]+"

    def to_python(self, value: str) -> int:
        number = int(value)  # a ValueError (more digits than int() takes) is no match, too
        if number > BIGINT_MAX:
            raise ValueError(value)
        return number

    def to_url(self, value) -> str:
        return str(value)


def page_not_found(request, exception):
    """settings.ROOT_URLCONF's handler404: a URL under /api/ that names no endpoint (an id that
    is no number, a typo) answers DRF's JSON 404 like every other API error, not the HTML page."""
    if request.path_info.startswith(API_PREFIX):
        return JsonResponse({"detail": str(exceptions.NotFound.default_detail)}, status=404)
    return defaults.page_not_found(request, exception)


# ---------------------------------------------------------------- service errors


class Conflict(exceptions.APIException):
    """409: the request is fine, the current state refuses it (a row in use, an import that is
    not interrupted, an engine refusal). `code`, when given, is set in the body for clients."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = _("This is not possible in the current state.")
    default_code = "conflict"

    def __init__(self, detail=None, code: str | None = None):
        super().__init__(detail, code)
        if code is not None:
            self.detail = {"detail": exceptions.ErrorDetail(str(detail or self.default_detail), code), "code": code}


class ServiceError(exceptions.APIException):
    """A registered service error as a response: the registry's status and body."""

    def __init__(self, status_code: int, body):
        self.status_code = status_code
        super().__init__(body)


def _message_body(exc) -> dict:
    return {"detail": str(exc)}


def _coded_body(exc) -> dict:
    return {"code": exc.code, "detail": str(exc)}


# Exception class -> (status, body maker). The handler looks along the exception's MRO, so a
# subclass registered on its own (labeling's NotAMember: 403) wins over its base (409).
_SERVICE_ERRORS: dict[type, tuple[int, Callable]] = {}


def register_service_error(cls: type, status_code: int, body: Callable | None = None) -> None:
    """Answer service exception `cls` with `status_code` and `body(exc)` (default
    {"detail": message}, or {"code", "detail"} when the class has a `code`)."""
    if body is None:
        body = _coded_body if hasattr(cls, "code") else _message_body
    _SERVICE_ERRORS[cls] = (status_code, body)


def as_response_error(exc):
    """The APIException an exception answers as, or None when it is none of ours."""
    for cls in type(exc).__mro__:
        if cls in _SERVICE_ERRORS:
            status_code, body = _SERVICE_ERRORS[cls]
            return ServiceError(status_code, body(exc))
    if isinstance(exc, DjangoValidationError):
        return serializers.ValidationError(serializers.as_serializer_error(exc))
    return None


def exception_handler(exc, context):
    """settings.REST_FRAMEWORK["EXCEPTION_HANDLER"]: registered service errors and Django
    ValidationErrors become their responses; the rest is DRF's own handling."""
    # Imported here: rest_framework.views reads the settings that name this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    mapped = as_response_error(exc)
    return drf_exception_handler(mapped if mapped is not None else exc, context)


# ---------------------------------------------------------------- the schema


ERROR_COMPONENT = "ErrorDetail"
FIELD_ERRORS_COMPONENT = "FieldErrors"
COMPONENTS = {
    ERROR_COMPONENT: {
        "type": "object",
        "description": "Why the request was refused. `code` is set where a client may act on it.",
        "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
        "required": ["detail"],
    },
    FIELD_ERRORS_COMPONENT: {
        "type": "object",
        "description": "Bad input: messages by field name (lists, or objects for nested fields); "
                       "`non_field_errors` or `detail` for the request as a whole.",
        "additionalProperties": {},
    },
}
STANDARD_ERRORS = {
    "400": ("Bad input (a field, a query parameter, a page number, malformed or too deeply nested "
            "JSON, a NUL character); nothing was changed.", FIELD_ERRORS_COMPONENT),
    "401": ("No valid credentials: sign in or send `Authorization: Token <key>`.", ERROR_COMPONENT),
    "403": ("Signed in, but this role (or this labeler) may not do this.", ERROR_COMPONENT),
    "404": ("No such object (or not one of yours), or a page past the last one.", ERROR_COMPONENT),
    "415": ("The body is in a content type this operation does not take.", ERROR_COMPONENT),
    "429": ("Too many requests; try again later.", ERROR_COMPONENT),
}


def _shape(path: str) -> str:
    """A path with its parameters unnamed: the generator's endpoints say {pk} where the schema
    says {id}."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors_for(view, has_path_parameters: bool, is_list: bool, has_body: bool) -> list[str]:
    codes = ["400"]
    public = any(issubclass(p, permissions.AllowAny) for p in getattr(view, "permission_classes", []))
    if not public:
        codes += ["401", "403"]
    if has_path_parameters or is_list:
        codes.append("404")
    if has_body:
        codes.append("415")
    if getattr(view, "throttle_classes", None):
        codes.append("429")
    return codes


def add_error_responses(result, generator, request, public):
    """SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]: list on every operation the errors it can
    answer and that are not documented yet, with the shared components. Responses an operation
    documents itself keep their body; a documented 400 (submit's RulesError) also allows field
    errors."""
    views = {(_shape(path), method.lower()): callback.cls for path, _regex, method, callback in generator.endpoints}
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in COMPONENTS.items():
        schemas.setdefault(name, schema)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            view = views.get((_shape(path), method))
            if view is None or not isinstance(operation, dict) or "responses" not in operation:
                continue
            params = operation.get("parameters", [])
            has_path_parameters = any(p.get("in") == "path" for p in params)
            is_list = any(p.get("in") == "query" and p.get("name") == "page" for p in params)
            responses = operation["responses"]
            for code in _errors_for(view, has_path_parameters, is_list, "requestBody" in operation):
                description, component = STANDARD_ERRORS[code]
                response = responses.setdefault(code, {"description": description})
                if "content" not in response:
                    response["content"] = {"application/json": {"schema": _ref(component)}}
                elif code == "400":
                    # An operation's own 400 body (submit's RulesError) is one kind; a malformed
                    # request still gets field errors or {"detail"} first.
                    for media in response["content"].values():
                        if media.get("schema") != _ref(component):
                            media["schema"] = {"anyOf": [media["schema"], _ref(component)]}
    return result
