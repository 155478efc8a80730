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

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PLATFORM_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # SQLite file, local media and the broker folder


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env(name)
    return default if value is None else int(value)


PLATFORM_ENV = env("PLATFORM_ENV", "embedded")
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
    "accounts",
    "datasets",
    "labeling",
    "curation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

if PRODUCTION:
    # Production serves collected static files itself (manage.py collectstatic first); the
    # embedded default lets runserver serve them from the apps.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
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
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        # Persistent connections in production: opening a PostgreSQL connection per request
        # halves the labelers' throughput (docs/bench-assign.md). Checked before each reuse.
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60 if PRODUCTION else 0),
        conn_health_checks=True,
    )
}
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
            "file_overwrite": False,
            "default_acl": None,
        },
    }
else:
    default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
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
# Uploads larger than this go to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("UPLOAD_MAX_FILES", 1000)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

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
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Sign-ins from custom clients (POST /api/auth/login/), per client address.
    "DEFAULT_THROTTLE_RATES": {"login": env("API_LOGIN_RATE", "20/minute")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Image-comment dataset platform API",
    "DESCRIPTION": "Categories and quotas, sources and licences, image ingest and the catalogue.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Ingest -------------------------------------------------------------------------------------
INGEST = {
    # Refuse images whose licence does not allow commercial use.
    "COMMERCIAL_ONLY": env_bool("INGEST_COMMERCIAL_ONLY", True),
    # Decompression-bomb limit (pixels of the decoded image) and file size limit (bytes).
    "MAX_PIXELS": env_int("INGEST_MAX_PIXELS", 50_000_000),
    "MAX_FILE_BYTES": env_int("INGEST_MAX_FILE_BYTES", 50 * 1024 * 1024),
    "MIN_SIDE": env_int("INGEST_MIN_SIDE", 64),
    "MAX_SIDE": env_int("INGEST_MAX_SIDE", 16_000),
    # Longest side over shortest: phone panoramas are about 4:1 to 8:1; past this a file is a
    # strip or a banner, whose stored copy and thumbnail would be a few pixels high.
    "MAX_ASPECT": env_int("INGEST_MAX_ASPECT", 10),
    # The stored copy: RGB JPEG, longest side and quality; the thumbnail likewise.
    "STORED_LONGEST_SIDE": env_int("INGEST_LONGEST_SIDE", 1280),
    "JPEG_QUALITY": env_int("INGEST_JPEG_QUALITY", 90),
    "THUMB_LONGEST_SIDE": env_int("INGEST_THUMB_SIDE", 320),
    "THUMB_QUALITY": env_int("INGEST_THUMB_QUALITY", 80),
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
    "WORKER_THREADS": env_int("INGEST_WORKER_THREADS", min(4, os.cpu_count() or 1)),
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

if PRODUCTION:
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
