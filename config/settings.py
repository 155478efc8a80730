"""Settings, chosen by environment variables alone.

Embedded default (nothing set): SQLite, media on local disk under var/, a Celery broker on the
local filesystem (no server), DEBUG on, a development secret key.

Production (PLATFORM_ENV=production): DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS are required,
DATABASE_URL points at PostgreSQL, CELERY_BROKER_URL at Redis or RabbitMQ, and S3_BUCKET (with
the AWS_* variables) puts images and shards on S3. The README lists every variable.
"""
from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from kombu import Exchange, Queue

from config.csp import media_origins
from config.csp import policy as csp_policy

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PLATFORM_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # SQLite file, local media and the broker folder


# Variables that did not parse: (name, value, expected form). Each falls back to its default so
# that this module still loads; the system check config.E001 (config/checks.py) lists every one
# at once (`manage.py check`, and runserver and migrate refuse to start), and production mode
# refuses to start at the end of this module, since a web or Celery process runs no checks.
SETTINGS_ERRORS: list[tuple[str, str, str]] = []
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    word = value.strip().lower()
    if word in TRUE_WORDS | FALSE_WORDS:
        return word in TRUE_WORDS
    SETTINGS_ERRORS.append((name, value, "one of 1/true/yes/on or 0/false/no/off"))
    return default


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """A whole number of at least `minimum` (digits only: 50000000, not 50M or 5e7)."""
    value = env(name)
    if value is None:
        return default
    try:
        number = int(value.strip().replace("_", ""))
    except ValueError:
        number = None
    if number is None or number < minimum:
        SETTINGS_ERRORS.append((name, value, f"a whole number of at least {minimum}, e.g. {default}"))
        return default
    return number


def env_float(name: str, default: float, *, minimum: float = 0.0, maximum: float = 1.0) -> float:
    """A number from `minimum` to `maximum` (0.5, 0.95)."""
    value = env(name)
    if value is None:
        return default
    try:
        number = float(value.strip())
    except ValueError:
        number = None
    if number is None or not minimum <= number <= maximum:
        SETTINGS_ERRORS.append((name, value, f"a number from {minimum} to {maximum}, e.g. {default}"))
        return default
    return number


def env_choice(name: str, default: str, choices: tuple[str, ...], *, upper: bool = False) -> str:
    value = env(name)
    if value is None:
        return default
    if (value.upper() if upper else value) in choices:
        return value.upper() if upper else value
    SETTINGS_ERRORS.append((name, value, "one of " + ", ".join(choices)))
    return default


def settings_error_messages() -> list[str]:
    return [f"{name}={value!r} is not valid: expected {expected}." for name, value, expected in SETTINGS_ERRORS]


PLATFORM_ENV = env("PLATFORM_ENV", "embedded")
if PLATFORM_ENV not in ("embedded", "production"):
    # No fallback here: a misspelt "production" must not start in embedded mode, DEBUG on.
    raise ImproperlyConfigured(f"PLATFORM_ENV={PLATFORM_ENV!r} is not valid: expected embedded or production.")
PRODUCTION = PLATFORM_ENV == "production"

if PRODUCTION:
    SECRET_KEY = env("DJANGO_SECRET_KEY")
    if not SECRET_KEY:
        raise ImproperlyConfigured("PLATFORM_ENV=production needs DJANGO_SECRET_KEY")
    hosts = env("DJANGO_ALLOWED_HOSTS")
    if not hosts:
        raise ImproperlyConfigured("PLATFORM_ENV=production needs DJANGO_ALLOWED_HOSTS")
    ALLOWED_HOSTS = [h.strip() for h in hosts.split(",") if h.strip()]
    DEBUG = env_bool("DJANGO_DEBUG", False)
else:
    # Only ever used by the embedded default on a developer's own machine.
    SECRET_KEY = env("DJANGO_SECRET_KEY", "embedded-development-key-not-for-production")
    ALLOWED_HOSTS = (env("DJANGO_ALLOWED_HOSTS") or "127.0.0.1,localhost,testserver").split(",")
    DEBUG = env_bool("DJANGO_DEBUG", True)

CSRF_TRUSTED_ORIGINS = [o for o in (env("DJANGO_CSRF_TRUSTED_ORIGINS") or "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "config",  # system checks of these settings (config/checks.py)
    "accounts",
    "datasets",
    "labeling",
    "curation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "config.middleware.RefuseNulMiddleware",  # a 400, before a NUL in the URL reaches a query
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # 413 for bodies over the limits, before the CSRF check or a parser reads them.
    "config.middleware.RequestSizeLimitMiddleware",
    # Turns a locked-out sign-in's page into a 429 with Retry-After (accounts/lockout.py).
    "axes.middleware.AxesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

if PRODUCTION:
    # Production serves collected static files itself (manage.py collectstatic first); the
    # embedded default lets runserver serve them from the apps.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
# The first refuses any sign-in (page, admin or API) while the account is locked; it logs no one in.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.roles",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DEFAULT_DATABASE_URL = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"


def database(url: str) -> dict:
    # Persistent connections in production: opening a PostgreSQL connection per request
    # halves the labelers' throughput (docs/bench-assign.md). Checked before each reuse.
    return dj_database_url.parse(url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60 if PRODUCTION else 0),
                                 conn_health_checks=True)


try:
    DATABASES = {"default": database(env("DATABASE_URL", DEFAULT_DATABASE_URL))}
except ValueError:  # dj_database_url's UnknownSchemeError is one
    # Only the scheme is repeated: the rest may hold a password.
    SETTINGS_ERRORS.append(("DATABASE_URL", env("DATABASE_URL").split("://", 1)[0] + "://...",
                            "a database URL, e.g. postgres://user:password@host:5432/name or sqlite:///path"))
    DATABASES = {"default": database(DEFAULT_DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while a worker writes; a busy timeout instead of
    # "database is locked" on a brief write overlap.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
    DATABASES["default"]["TEST"] = {"NAME": env("SQLITE_TEST_NAME")} if env("SQLITE_TEST_NAME") else {}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# --- Sign-in lockout (django-axes; accounts/lockout.py) ----------------------------------------
# Failed sign-ins are counted in the database, shared by every server process. An account is
# locked for one client address after LOGIN_FAILURE_LIMIT failures from it, and for every address
# after LOGIN_ACCOUNT_FAILURE_LIMIT failures in all; the lock lifts LOGIN_COOLOFF_MINUTES later
# (or when an admin resets it). Successful sign-ins are never limited, and reset the count.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
LOGIN_ACCOUNT_FAILURE_LIMIT = env_int("LOGIN_ACCOUNT_FAILURE_LIMIT", 50)
LOGIN_COOLOFF_MINUTES = env_int("LOGIN_COOLOFF_MINUTES", 15)
# Reverse proxies in front of the app that append the client's address to X-Forwarded-For.
# 0: the client is REMOTE_ADDR and the header is ignored (a client can write anything in it);
# 1: the header's last entry, the one our proxy wrote; N: the N-th entry from the right.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_HANDLER = "accounts.lockout.LoginLockoutHandler"
# Which rows a reset matches (a successful sign-in, `axes_reset_username`): the handler itself
# counts per (account, address) and per account.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "username"]
AXES_FAILURE_LIMIT = "accounts.lockout.failure_limit"
AXES_COOLOFF_TIME = "accounts.lockout.cool_off"
AXES_RESET_ON_SUCCESS = True
# Refused tries while locked do not restart the cool-off: the wait the message gives holds, and
# the real owner is not kept out for as long as a guesser keeps trying.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.client_address"
AXES_USERNAME_CALLABLE = "accounts.lockout.username_of"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
# No row per successful sign-in (User.last_login has the time): fewer writes, no address kept.
AXES_DISABLE_ACCESS_LOG = True

# --- Language: Korean first, English available -----------------------------------------------
LANGUAGE_CODE = env("DJANGO_LANGUAGE_CODE", "ko")
LANGUAGES = [("ko", _("Korean")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("DJANGO_TIME_ZONE", "Asia/Seoul")
USE_I18N = True
USE_TZ = True

# --- Files: local disk by default, S3 when S3_BUCKET is set -----------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))
S3_BUCKET = env("S3_BUCKET")
if S3_BUCKET:
    default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "location": env("S3_PREFIX", ""),
            "endpoint_url": env("AWS_S3_ENDPOINT_URL"),
            "region_name": env("AWS_S3_REGION_NAME"),
            "access_key": env("AWS_ACCESS_KEY_ID"),
            "secret_key": env("AWS_SECRET_ACCESS_KEY"),
            "querystring_auth": env_bool("S3_SIGNED_URLS", True),
            # Signed URLs are made only for people allowed to see the photo (pages and API check
            # first); short, so a removed labeler's copied links die soon. Pages and the labeling
            # API load their photos at once, so minutes are plenty.
            "querystring_expire": env_int("S3_SIGNED_URL_SECONDS", 600),
            "file_overwrite": False,
            "default_acl": None,
        },
    }
else:
    default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
# Local media is answered by datasets.media.serve_media, which checks who may see the photo.
# Then the web server sends the bytes from an `internal` location (nginx: this URL prefix goes
# into X-Accel-Redirect) or by file path (Apache/lighttpd: the header named here, e.g.
# X-Sendfile); with neither, Django streams the file (fine for the embedded default).
MEDIA_ACCEL_REDIRECT_PREFIX = env("MEDIA_ACCEL_REDIRECT_PREFIX", "")
MEDIA_SENDFILE_HEADER = env("MEDIA_SENDFILE_HEADER", "")
# How long a browser may keep a photo it was allowed to fetch (privately; never shared caches).
MEDIA_CACHE_SECONDS = env_int("MEDIA_CACHE_SECONDS", 3600)
STORAGES = {
    "default": default_storage,
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Request sizes (config.middleware.RequestSizeLimitMiddleware; keep the proxy's body limit, e.g.
# nginx's client_max_body_size, at UPLOAD_MAX_BYTES). A request body larger than
# FILE_UPLOAD_MAX_MEMORY_SIZE spools its files to temporary files instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("DJANGO_FILE_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("UPLOAD_MAX_FILES", 1000)
# Any body but a signed-in user's multipart upload: forms and JSON, the API's included.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024)
# The largest request body at all: one import's files (photos and .zip archives) and the form.
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 2 * 1024**3)

# --- Content-Security-Policy (config/csp.py): scripts and styles from this site only -----------
CONTENT_SECURITY_POLICY = csp_policy(
    media_origins(S3_BUCKET, env("AWS_S3_ENDPOINT_URL"), env("AWS_S3_REGION_NAME") or env("AWS_DEFAULT_REGION"))
)

# --- Celery: a filesystem broker needs no server; Redis or RabbitMQ in production --------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    # kombu's filesystem transport with atomic message writes (config/broker.py).
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"
    _broker_dir = VAR_DIR / "celery-broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True  # progress lives in our own rows (ImportJob), not a result backend
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    # config.api: parsers that refuse NUL characters and too deeply nested JSON with a 400, and
    # the pagination that refuses absurd page numbers.
    "DEFAULT_PARSER_CLASSES": ["config.api.JSONParser", "config.api.FormParser", "config.api.MultiPartParser"],
    "DEFAULT_PAGINATION_CLASS": "config.api.Pagination",
    # Service errors (registered by each app) and Django ValidationErrors as responses.
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Any throttle keys on the client address the trusted proxies give (sign-ins are guarded by
    # the lockout above, not by a throttle).
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
# Days a device token from POST /api/auth/login/ lasts (0: until revoked). Tokens made on the
# tokens page or POST /api/tokens/ last until revoked unless their maker sets an expiry.
API_TOKEN_DEVICE_DAYS = env_int("API_TOKEN_DEVICE_DAYS", 30)
# Whether the OpenAPI schema and its docs (/api/schema/, /api/docs/, /api/redoc/) are open to anyone;
# otherwise a sign-in of any role (session or token) is needed. They show every endpoint and field
# of a platform holding unpublished data, so production keeps them behind the sign-in.
API_DOCS_PUBLIC = env_bool("API_DOCS_PUBLIC", not PRODUCTION)
SPECTACULAR_SETTINGS = {
    "TITLE": "Image-comment dataset platform API",
    "DESCRIPTION": "Categories and quotas, sources and licences, image ingest and the catalogue.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Every operation lists the errors it can answer (400/401/403/404/429) with shared components.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.api.add_error_responses"],
    # `<id:...>` URL parameters (config.api.IdConverter): ids that fit a bigint.
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}},
    # Choice sets whose field names (kind, status, action) other apps use too.
    "ENUM_NAME_OVERRIDES": {
        "KindEnum": "datasets.models.SourceKind",  # the name it had before curation added a `kind`
        "FlagKindEnum": "curation.models.FlagKind",
        "FlagStatusEnum": "curation.models.FlagStatus",
        "DecisionActionEnum": "curation.models.DecisionAction",
        "DecideActionEnum": "curation.models.DECIDE_ACTIONS",
        "CurationRunStatusEnum": "curation.models.RunStatus",
        "CurationRunTriggerEnum": "curation.models.RunTrigger",
    },
}

# --- Ingest -------------------------------------------------------------------------------------
INGEST = {
    # Refuse images whose licence does not allow commercial use.
    "COMMERCIAL_ONLY": env_bool("INGEST_COMMERCIAL_ONLY", True),
    # Decompression-bomb limit (pixels of the decoded image) and file size limit (bytes).
    "MAX_PIXELS": env_int("INGEST_MAX_PIXELS", 50_000_000, minimum=1),
    "MAX_FILE_BYTES": env_int("INGEST_MAX_FILE_BYTES", 50 * 1024 * 1024),
    "MIN_SIDE": env_int("INGEST_MIN_SIDE", 64),
    "MAX_SIDE": env_int("INGEST_MAX_SIDE", 16_000, minimum=1),
    # Longest side over shortest: phone panoramas are about 4:1 to 8:1; past this a file is a
    # strip or a banner, whose stored copy and thumbnail would be a few pixels high.
    "MAX_ASPECT": env_int("INGEST_MAX_ASPECT", 10, minimum=1),
    # The stored copy: RGB JPEG, longest side and quality; the thumbnail likewise.
    "STORED_LONGEST_SIDE": env_int("INGEST_LONGEST_SIDE", 1280, minimum=1),
    "JPEG_QUALITY": env_int("INGEST_JPEG_QUALITY", 90, minimum=1),
    "THUMB_LONGEST_SIDE": env_int("INGEST_THUMB_SIDE", 320, minimum=1),
    "THUMB_QUALITY": env_int("INGEST_THUMB_QUALITY", 80, minimum=1),
    # Zip archives: total uncompressed bytes, member count and compression ratio caps.
    "ZIP_MAX_TOTAL_BYTES": env_int("INGEST_ZIP_MAX_TOTAL_BYTES", 2 * 1024**3),
    "ZIP_MAX_MEMBERS": env_int("INGEST_ZIP_MAX_MEMBERS", 20_000),
    "ZIP_MAX_RATIO": env_int("INGEST_ZIP_MAX_RATIO", 100),
    # URL manifests: timeout per request, and whether private/loopback addresses may be fetched.
    "URL_TIMEOUT": env_int("INGEST_URL_TIMEOUT", 20),
    "URL_ALLOW_PRIVATE": env_bool("INGEST_URL_ALLOW_PRIVATE", not PRODUCTION),
    # Server folders and manifest paths must lie under one of these roots (comma-separated).
    "ALLOWED_ROOTS": [p for p in (env("INGEST_ALLOWED_ROOTS") or "").split(",") if p],
    # One import task runs at most this long (seconds): near the soft limit it stops starting new
    # files and hands the rest to a new task, so a big folder still finishes; a file still being
    # read at the soft limit is refused on its own line (prefork pool, the production default,
    # raises the soft limit inside the task); at the hard limit the worker kills the task, and the
    # stalled-import sweep below marks the import interrupted.
    "TASK_SOFT_TIME_LIMIT": env_int("INGEST_TASK_SOFT_TIME_LIMIT", 30 * 60),
    "TASK_HARD_TIME_LIMIT": env_int("INGEST_TASK_HARD_TIME_LIMIT", 32 * 60),
    # A running import that shows no sign of life for this long (seconds) is marked interrupted:
    # its worker or command died. No single file can take this long (file size, pixel and
    # URL time limits).
    "STALE_SECONDS": env_int("INGEST_STALE_SECONDS", 10 * 60),
    # Staged uploads of an interrupted import are kept this many days for a resume, then the
    # orphan sweep removes them and the import becomes failed.
    "INTERRUPTED_KEEP_DAYS": env_int("INGEST_INTERRUPTED_KEEP_DAYS", 7),
    # Files an import reads, judges and writes at once in worker threads, ahead of the one whose
    # row it stores (decoding, resizing, hashing and writing release the GIL). Each may hold a
    # decoded image (up to MAX_PIXELS x 4 bytes, a few copies); 1: one file at a time, no thread.
    "WORKER_THREADS": env_int("INGEST_WORKER_THREADS", min(4, os.cpu_count() or 1), minimum=1),
    # With WORKER_THREADS > 1, where each file is decoded, resized, hashed and encoded: "threads"
    # (in the worker threads themselves: one process, one GIL) or "processes" (as many forked
    # worker processes, one GIL each: bytes in, results out, no database connection used there;
    # the threads still read and write the files). A process that may not have children (a Celery
    # prefork worker's, daemonic) or a platform that cannot fork uses threads instead.
    "WORKER_KIND": env_choice("INGEST_WORKER_KIND", "threads", ("threads", "processes")),
    # Colour tables a process keeps (64 MiB each): a profile that has moved many photos' pixels
    # (Display P3: every iPhone photo) is looked up per pixel instead of computed by lcms, the
    # same pixels in about half the time (datasets.imaging._ColourTransform). 0: none.
    "COLOUR_TABLES": env_int("INGEST_COLOUR_TABLES", 2),
    # S3-compatible endpoints a planner may choose for an S3 import (comma-separated), besides the
    # default (AWS_S3_ENDPOINT_URL, else AWS). The worker signs its requests with the server's
    # credentials, so no other address is accepted from the web; ingest_s3 (run by the operator)
    # may name any endpoint.
    "S3_ENDPOINT_URLS": [u.strip() for u in (env("INGEST_S3_ENDPOINT_URLS") or "").split(",") if u.strip()],
}

# --- Export -------------------------------------------------------------------------------------
EXPORT = {
    # Local destinations chosen on the pages or through the API lie under this folder (the
    # management command may write anywhere); s3://bucket/prefix goes to S3.
    "ROOT": env("EXPORT_ROOT", str(VAR_DIR / "exports")),
    # Shards one Celery task writes: the unit more workers share.
    "SHARDS_PER_TASK": env_int("EXPORT_SHARDS_PER_TASK", 4, minimum=1),
    # A running export with no sign of life for this long (seconds) may be resumed: its worker died.
    "STALE_SECONDS": env_int("EXPORT_STALE_SECONDS", 10 * 60),
    # The S3 endpoint exports write to (default AWS_S3_ENDPOINT_URL, else AWS), and how long a
    # signed download link of an S3 export stays valid.
    "S3_ENDPOINT_URL": env("EXPORT_S3_ENDPOINT_URL", ""),
    "SIGNED_URL_SECONDS": env_int("EXPORT_SIGNED_URL_SECONDS", 3600, minimum=1),
}

# --- Curation -----------------------------------------------------------------------------------
def env_thresholds(name: str, defaults: dict[str, float | None]) -> dict[str, float | None]:
    """`name=value` pairs, comma-separated, over `defaults` ("dark=0.3,tiny=off": "off" turns a
    flag off)."""
    value, out = env(name), dict(defaults)
    for part in (value or "").split(","):
        key, _, number = part.partition("=")
        key, number = key.strip(), number.strip()
        if not key:
            continue
        try:
            if key not in defaults:
                raise ValueError
            out[key] = None if number.lower() == "off" else float(number)
        except ValueError:
            SETTINGS_ERRORS.append((name, value, "flag=number pairs, comma-separated, flags among "
                                    + ", ".join(defaults) + ' (a number, or "off")'))
            return dict(defaults)
    return out


CURATION = {
    # Image quality flags: a photo is flagged when its statistic is below the threshold
    # (curation/quality.py says what each number is); "off" turns a flag off.
    "QUALITY_THRESHOLDS": env_thresholds("CURATION_QUALITY_THRESHOLDS", {
        "dark": 0.32, "light": 0.05, "blurry": 0.2, "low_information": 0.3, "odd_aspect": 0.35,
        "grayscale": 0.05, "tiny": 128,
    }),
    # Photos (or comment projects) one Celery task of a step works on: the unit more workers share.
    "CHUNK_SIZE": env_int("CURATION_CHUNK_SIZE", 200, minimum=1),
    # A queued or running run with no sign of life for this long (seconds) may be resumed.
    "STALE_SECONDS": env_int("CURATION_STALE_SECONDS", 10 * 60, minimum=1),
    # A new-only photo run (quality, perceptual duplicates) after every import that stored photos.
    "RUN_AFTER_IMPORT": env_bool("CURATION_RUN_AFTER_IMPORT", True),
    # A new-only text run of a project after every this many submitted comment sets (0: never).
    "TEXT_RUN_EVERY_SETS": env_int("CURATION_TEXT_RUN_EVERY_SETS", 50),
    # Duplicate and template comments (curation/textdup.py): near-duplicate Jaccard threshold,
    # photos a cluster must span to be a template, and the share of a labeler's comments that copy
    # their own earlier ones from which those copies are flagged.
    "TEXT_THRESHOLD": env_float("CURATION_TEXT_THRESHOLD", 0.6),
    "TEMPLATE_MIN_PHOTOS": env_int("CURATION_TEMPLATE_MIN_PHOTOS", 5, minimum=2),
    "SELF_COPY_MIN_SHARE": env_float("CURATION_SELF_COPY_MIN_SHARE", 0.2),
    # Toxicity and bias (curation/toxicity.py): a comment is flagged for toxicity when the
    # classifier's probability of hate or offensive reaches TOXICITY_THRESHOLD (or the korcen
    # lexicon matches: its score is then at least TOXICITY_LEXICON_SCORE, korcen's measured
    # precision); for bias when the bias head's probability of gender or other reaches
    # BIAS_THRESHOLD. Trained versions go under TOXICITY_MODEL_DIR on the media storage.
    "TOXICITY_THRESHOLD": env_float("CURATION_TOXICITY_THRESHOLD", 0.5),
    "BIAS_THRESHOLD": env_float("CURATION_BIAS_THRESHOLD", 0.5),
    "TOXICITY_LEXICON_SCORE": env_float("CURATION_TOXICITY_LEXICON_SCORE", 0.95),
    "TOXICITY_MODEL_DIR": env("CURATION_TOXICITY_MODEL_DIR", "curation/toxicity"),
    # Faces and licence plates in photos (curation/photo_pii.py, OpenCV's bundled Haar cascades):
    # the stored photo is decoded at most PHOTO_PII_SIDE pixels on its longest side; a face (or
    # plate) box is at least *_MIN_SIZE of the photo's shorter side (faces) or longer side
    # (plates); the cascades' scale step and the overlapping hits a box needs (more: fewer false
    # boxes, more missed ones). FACE flags only outside PEOPLE_CATEGORIES (category slugs,
    # comma-separated): a face in a people photo is the subject, not a leak.
    "PHOTO_PII_SIDE": env_int("CURATION_PHOTO_PII_SIDE", 512, minimum=64),
    "FACE_SCALE_FACTOR": env_float("CURATION_FACE_SCALE_FACTOR", 1.1, minimum=1.01, maximum=2.0),
    "FACE_MIN_NEIGHBOURS": env_int("CURATION_FACE_MIN_NEIGHBOURS", 5, minimum=1),
    "FACE_MIN_SIZE": env_float("CURATION_FACE_MIN_SIZE", 0.05),
    # Also the profile cascade (and its mirror): faces turned sideways, at about three times the
    # time per photo (frontal alone ~0.35 s a photo on one busy core of the development box).
    "FACE_PROFILES": env_bool("CURATION_FACE_PROFILES", False),
    "PLATE_SCALE_FACTOR": env_float("CURATION_PLATE_SCALE_FACTOR", 1.1, minimum=1.01, maximum=2.0),
    "PLATE_MIN_NEIGHBOURS": env_int("CURATION_PLATE_MIN_NEIGHBOURS", 5, minimum=1),
    "PLATE_MIN_SIZE": env_float("CURATION_PLATE_MIN_SIZE", 0.06),
    "PEOPLE_CATEGORIES": [s.strip() for s in (env("CURATION_PEOPLE_CATEGORIES", "people") or "").split(",") if s.strip()],
    # The most flags one decision by filters (the review queue's "Decide all N matching") takes,
    # all in one transaction; more: narrow the filters.
    "BULK_MATCH_MAX": env_int("CURATION_BULK_MATCH_MAX", 20000, minimum=1),
    # Hallucination and specificity scores (curation/scores.py): photos in each project's fixed
    # random sample a comment is compared with; shuffled (comment, other photo) pairs the
    # calibration draws; the share of those wrong-photo pairs the hallucination threshold flags
    # (its recall on the null); and the quantile of a project's specificity below which a comment
    # counts as generic on the specificity page when the project sets no threshold.
    "SCORE_SAMPLE": env_int("CURATION_SCORE_SAMPLE", 256, minimum=2),
    "CALIBRATION_PAIRS": env_int("CURATION_CALIBRATION_PAIRS", 2000, minimum=10),
    "HALLUCINATION_TARGET_RATE": env_float("CURATION_HALLUCINATION_TARGET_RATE", 0.5, minimum=0.01, maximum=0.99),
    "GENERIC_QUANTILE": env_float("CURATION_GENERIC_QUANTILE", 0.1, minimum=0.01, maximum=0.99),
    # A comment whose reach (how much better its best-fitting photos fit it than the average
    # photo) is in this lowest share of its project's comments is bland, not a hallucination: its
    # rank is noise. 0 turns the rule off.
    "HALLUCINATION_REACH_QUANTILE": env_float("CURATION_HALLUCINATION_REACH_QUANTILE", 0.25, minimum=0.0,
                                              maximum=0.9),
    # The korcen lexicon inline at submit (labeling.services.submit): a comment it matches gets an
    # open TOXICITY flag in the same transaction (nothing is refused; the next text run's toxicity
    # step updates that same flag). Off: only the text runs flag toxicity.
    "INLINE_LEXICON": env_bool("CURATION_INLINE_LEXICON", True),
}
# Celery queues: "celery" (imports, exports, labeling), "curation" (photo and text steps) and
# "embeddings" (the embedding steps, for GPU workers: `celery -A config worker -Q embeddings`). A
# worker started without -Q consumes all three, so the embedded one-command run needs nothing more.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = [Queue(name, Exchange(name), routing_key=name) for name in ("celery", "curation", "embeddings")]
CELERY_TASK_ROUTES = {"curation.tasks.*": {"queue": "curation"}}

# --- Curation: embeddings and semantic duplicates ------------------------------------------------
# The embedding model is configuration (README, "Embeddings"): an open_clip model name with a
# pretrained tag (found in the local Hugging Face / open_clip cache only: nothing is downloaded
# unless CURATION_EMBED_ALLOW_DOWNLOAD is on), or a local checkpoint (e.g. one written by
# trainers' retrieval trainer), which wins when set. Without weights the embedding steps and the
# semantic duplicate tier say so and are skipped.
CURATION_EMBED = {
    "MODEL": env("CURATION_EMBED_MODEL", "xlm-roberta-base-ViT-B-32"),
    "PRETRAINED": env("CURATION_EMBED_PRETRAINED", "laion5b_s13b_b90k"),
    "CHECKPOINT": env("CURATION_EMBED_CHECKPOINT", ""),
    "ALLOW_DOWNLOAD": env_bool("CURATION_EMBED_ALLOW_DOWNLOAD", False),
    # On: the "embeddings" queue is served by other machines (GPU workers with requirements-ml.txt
    # and the weights), so the machine that plans a run does not look for torch and weights itself.
    "REMOTE": env_bool("CURATION_EMBED_REMOTE", False),
    # "auto": CUDA when there is one, else the CPU; or "cpu", "cuda", "cuda:1", ...
    "DEVICE": env("CURATION_EMBED_DEVICE", "auto"),
    # Photos (or comments) per forward pass, per chunk task (one stored segment each), and the
    # threads that read and decode photos while the model runs.
    "BATCH": env_int("CURATION_EMBED_BATCH", 64, minimum=1),
    "CHUNK": env_int("CURATION_EMBED_CHUNK", 1024, minimum=1),
    "THREADS": env_int("CURATION_EMBED_THREADS", 0),  # 0: min(8, CPUs)
    # Where the float16 vector segments go on the media storage.
    "PREFIX": env("CURATION_EMBED_PREFIX", "curation/embeddings"),
}
# Semantic duplicates (curation.embedding.SemanticDuplicates): photo pairs whose embeddings'
# cosine similarity is at least the threshold, searched SemDeDup-style (k-means clusters, then
# all pairs within each photo's PROBES nearest clusters).
CURATION_SEMANTIC = {
    "THRESHOLD": env_float("CURATION_SEMANTIC_THRESHOLD", 0.95, minimum=0.0, maximum=1.0),
    "PROBES": env_int("CURATION_SEMANTIC_PROBES", 8, minimum=1),
}

# --- Training runs ------------------------------------------------------------------------------
RUNS = {
    # Run folders registered from the web (page or API) lie under this folder, or on S3
    # (s3://bucket/prefix); `manage.py register_run`, run by the operator, may name any folder.
    "ROOT": env("RUNS_ROOT", str(VAR_DIR / "runs")),
}

# --- Labeling -----------------------------------------------------------------------------------
# How often (seconds) the queue's "furthest from quota" category order is recomputed.
LABELING_PRIORITY_REFRESH_SECONDS = env_int("LABELING_PRIORITY_REFRESH_SECONDS", 60)
# How often (seconds, per server process) `next` sweeps other labelers' expired leases back into
# the queue; a labeler's own expired leases, and any before "no work" is said, are freed at once.
LABELING_RELEASE_SECONDS = env_int("LABELING_RELEASE_SECONDS", 5)
# When every open photo is locked by other labelers' requests, `next` looks again for up to this
# many seconds before saying "no work" (it never waits on a row lock itself: no deadlocks).
LABELING_BUSY_WAIT_SECONDS = env_int("LABELING_BUSY_WAIT_SECONDS", 10)
# How often the planner's progress dashboard refreshes itself.
PLANNER_DASHBOARD_REFRESH_SECONDS = env_int("PLANNER_DASHBOARD_REFRESH_SECONDS", 10)
# Far above what a real project needs (the known build had 2 comment types and a guideline of a few
# KB): each type is a text box on a labeler's phone and rules checked on every submit, and the
# guideline is rendered for every labeler, so thousands of types or megabytes of Markdown only hurt.
LABELING_MAX_COMMENT_TYPES = env_int("LABELING_MAX_COMMENT_TYPES", 20, minimum=1)
LABELING_MAX_GUIDELINE_CHARS = env_int("LABELING_MAX_GUIDELINE_CHARS", 200_000)

# 403s and 404s are logged as one line each, without a traceback; 500s keep theirs
# (config.logging.ClientErrorsWithoutTraceback). Django's loggers pass everything on to this one
# console (Django's own debug console would print each line, traceback and all, a second time).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"client_errors_without_traceback": {"()": "config.logging.ClientErrorsWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["client_errors_without_traceback"]}},
    "root": {"handlers": ["console"],
             "level": env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), upper=True)},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django": {"handlers": [], "level": "INFO"},
    },
}

if PRODUCTION:
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # HTTPS only: plain-http requests are redirected (DJANGO_SSL_REDIRECT=0 for a check over plain
    # http on the server itself, or where the proxy redirects), and browsers are told to use https
    # for a year (start lower with DJANGO_HSTS_SECONDS on a first rollout: browsers keep it that long).
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
    # Preloading is for a whole domain and hard to undo: an operator's deliberate choice, so off
    # by default, and then Django's reminder (security.W021) is not shown.
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

if SETTINGS_ERRORS and PRODUCTION:
    raise ImproperlyConfigured("Bad environment variables:\n" + "\n".join(settings_error_messages()))
