"""One settings module for every environment, driven by environment variables (django-environ).

DJANGO_ENV selects the posture: `development` (default; embedded SQLite and a file-system broker so nothing needs
installing), `test`, or `production` (refuses to start without a real secret key, enables the secure defaults).
Every variable is listed in README.md.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from aicell.storage_settings import FILESYSTEM_BACKEND, storages_setting

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env.read_env(BASE_DIR / ".env", overwrite=False)

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "test", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV must be development, test or production, not {DJANGO_ENV!r}")
PRODUCTION = DJANGO_ENV == "production"

VAR_DIR = Path(env.str("AICELL_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# Keys that must never be used in production even if someone copies them from an example file.
_KNOWN_UNSAFE_KEYS = {"", "changeme", "change-me", "secret", "django-insecure", "dev"}


def _development_secret_key() -> str:
    """A random key kept under var/ so sessions survive restarts of a development server."""
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def secret_key_weakness(key: str) -> str | None:
    """Why a key is not fit for production (None when it is): Django's own deploy criteria (at least 50 characters,
    at least 5 distinct ones, not a generated `django-insecure-` key) plus the values example files carry."""
    if key.lower() in _KNOWN_UNSAFE_KEYS or key.startswith("django-insecure"):
        return "it is a placeholder or a development key"
    if len(key) < 50:
        return f"it has {len(key)} characters; at least 50 are needed"
    if len(set(key)) < 5:
        return "it repeats too few distinct characters to be random"
    return None


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if PRODUCTION and (weakness := secret_key_weakness(SECRET_KEY)) is not None:
    raise ImproperlyConfigured(
        f"DJANGO_SECRET_KEY must be set to a random value of at least 50 characters in production: {weakness}. "
        'Generate one with: python -c "import secrets; print(secrets.token_urlsafe(64))"'
    )
if not SECRET_KEY:
    SECRET_KEY = _development_secret_key()

DEBUG = env.bool("DJANGO_DEBUG", default=DJANGO_ENV == "development")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_celery_results",
    "aicell.apps.AicellConfig",
    "annotations.apps.AnnotationsConfig",
    "inference.apps.InferenceConfig",
    "training.apps.TrainingConfig",
    "frontend.apps.FrontendConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "aicell.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "aicell.urls"
WSGI_APPLICATION = "aicell.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'aicell.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the workers and beat are separate processes writing one SQLite file. WAL: readers never block
    # the writer (synchronous=NORMAL is WAL's safe setting: a crash loses at most the last commits, never the file).
    # A transaction takes the write lock when it begins (IMMEDIATE), so it waits its turn (timeout, seconds) instead
    # of failing with "database is locked" when a read inside it turns into a write after another process wrote.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        }
    )
    # The test database is a file beside the embedded one, not Django's default shared-cache memory database:
    # the live server's threads, a worker and worker processes then share it exactly as the demo's processes share
    # theirs (in memory, the live server would hand every request thread one shared connection, and the worker would
    # meet table locks that no busy timeout waits for).
    DATABASES["default"].setdefault("TEST", {}).setdefault("NAME", str(VAR_DIR / "test_aicell.sqlite3"))
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [d for d in [BASE_DIR / "frontend" / "dist"] if d.exists()]
# The browser UI's built assets carry a content hash in their names (assets/index-B1a2c3d4.js): cached for ever.
WHITENOISE_IMMUTABLE_FILE_TEST = r"/assets/.+-[A-Za-z0-9_-]{8}\.[a-z0-9.]+$"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
AICELL_STORAGE = env.str("AICELL_STORAGE", default="filesystem")
AICELL_MODEL_DIR = Path(env.str("AICELL_MODEL_DIR", default=str(VAR_DIR / "models")))
try:
    # "default": field images, thumbnails, exports; "models": checkpoints and plots (aicell/storage_settings.py).
    STORAGES = storages_setting(
        AICELL_STORAGE,
        default_backend=env.str("DEFAULT_FILE_STORAGE", default=FILESYSTEM_BACKEND),
        static_backend="whitenoise.storage.CompressedStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage",
        bucket=env.str("AICELL_S3_BUCKET", default=""),
        endpoint_url=env.str("AICELL_S3_ENDPOINT_URL", default=""),
        region=env.str("AICELL_S3_REGION", default=""),
        prefix=env.str("AICELL_S3_PREFIX", default=""),
    )
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
# Uploads are checked image by image by the service layer; Django's own cap only guards the request body.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = env.int("AICELL_MAX_FILES_PER_UPLOAD", default=200)

LOGIN_URL = "/api-auth/login/"
LOGIN_REDIRECT_URL = "/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first so that an anonymous request is answered 401 with a WWW-Authenticate header.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON bodies get the size limit Django applies to forms (aicell/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "aicell.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": [
        "aicell.api.filters.StrictFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "aicell.api.pagination.StandardPagination",
    "DEFAULT_SCHEMA_CLASS": "aicell.api.schema.AicellAutoSchema",
    "EXCEPTION_HANDLER": "aicell.api.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "AI-cell API",
    "DESCRIPTION": "Bone-marrow smear fields, double review, three-stage cell models, differential counts.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI assets ship with the package: the docs work on a machine without internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several choice sets share a field name ("status", "format"): each gets its own component name.
    "ENUM_NAME_OVERRIDES": {
        "FieldStatusEnum": "annotations.models.FieldStatus",
        "RoleEnum": "aicell.roles.ROLE_CHOICES",
        "AnnotationStatusEnum": "annotations.models.AnnotationStatus",
        "ConflictStatusEnum": "annotations.models.ConflictStatus",
        "JobStatusEnum": "aicell.models.JobStatus",
        "PrelabelItemStatusEnum": "inference.models.ItemStatus",
        "ImageFormatEnum": "annotations.models.ImageFormat",
        "ImportFormatEnum": "annotations.models.ImportFormat",
        "ReviewOutcomeEnum": "annotations.models.ReviewOutcome",
        "SplitEnum": "annotations.models.Split",
        "YourSideEnum": [("a", "a"), ("b", "b")],
    },
}

# Celery: embedded default is a file-system broker (no server) and the Django database as result backend;
# CELERY_BROKER_URL=redis://... switches to Redis. Never eager: a real worker process always runs the tasks.
# The file-system transport ignores the host; naming one spares kombu's "No hostname was supplied" warning.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost//")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="django-db")
CELERY_BROKER_DIR = Path(env.str("AICELL_BROKER_DIR", default=str(VAR_DIR / "broker")))
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (CELERY_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
        # How often an idle worker looks for a message (kombu's default, 1 s, left a worker idle up to a second
        # between two pre-label chunks; a directory listing ten times a second is nothing).
        "polling_interval": env.float("AICELL_BROKER_POLL_S", default=0.1),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
CELERY_TASK_DEFAULT_QUEUE = "default"
# Routes match task *names* ("inference.prelabel_fields"), not module paths: every inference and training task
# goes to the GPU workers.
CELERY_TASK_ROUTES = {"inference.*": {"queue": "gpu"}, "training.*": {"queue": "gpu"}}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_RESULT_EXTENDED = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# AI-cell settings.
AICELL_MAX_UPLOAD_PIXELS = env.int("AICELL_MAX_UPLOAD_PIXELS", default=50_000_000)
AICELL_MAX_UPLOAD_BYTES = env.int("AICELL_MAX_UPLOAD_BYTES", default=100 * 1024 * 1024)
AICELL_THUMBNAIL_SIZE = env.int("AICELL_THUMBNAIL_SIZE", default=320)
AICELL_AUTO_PRELABEL = env.bool("AICELL_AUTO_PRELABEL", default=True)
AICELL_PROFILE = env.str("AICELL_PROFILE", default="cpu")
# AICELL_MODEL_DIR (set with STORAGES above): checkpoints while training, and the local copies of stored ones.
# Dataset snapshots of training runs (JSONL of training records + per-field sources).
AICELL_DATASET_DIR = Path(env.str("AICELL_DATASET_DIR", default=str(VAR_DIR / "datasets")))
# Per-patient train/val/test split: seed and ratios used for patients that have no split yet.
AICELL_SPLIT_SEED = env.int("AICELL_SPLIT_SEED", default=0)
AICELL_SPLIT_RATIOS = env.list("AICELL_SPLIT_RATIOS", cast=float, default=[0.7, 0.1, 0.2])
# Model profiles are data: the shipped file, or a lab's own copy with extra or tuned profiles.
AICELL_PROFILES_FILE = Path(
    env.str("AICELL_PROFILES_FILE", default=str(BASE_DIR / "inference" / "core" / "profiles.yaml"))
)
# Device for inference and training: empty = the profile's choice ("auto": CUDA when available).
AICELL_DEVICE = env.str("AICELL_DEVICE", default="")
# Processes (ranks) a training job trains each stage with, data-parallel (README "Scaling"): 0 = one per visible
# GPU when training on CUDA, one process on CPU; a job's own `nproc` (manage.py train --nproc) wins. Several hosts:
# AICELL_TRAIN_NNODES, MASTER_ADDR, MASTER_PORT, read from the environment by training.core.distributed.
AICELL_TRAIN_NPROC = env.int("AICELL_TRAIN_NPROC", default=0)
# Fields per pre-label task (decoded, run and stored as one chunk, one transaction): 0 = the model profile's
# `prelabel_chunk` (128 for paper on a GPU, 32 for cpu).
AICELL_PRELABEL_CHUNK = env.int("AICELL_PRELABEL_CHUNK", default=0)
# Threads a pre-label worker decodes field images with, ahead of the model.
AICELL_DECODE_THREADS = env.int("AICELL_DECODE_THREADS", default=2)
# Minutes a review-queue cell stays reserved for the reviewer it was handed to.
# How long a reviewer holds their batch of queued cells without a sign of life from their page (it renews every
# minute while open and releases the batch when closed).
AICELL_REVIEW_CLAIM_SECONDS = env.int("AICELL_REVIEW_CLAIM_SECONDS", default=180)
# Seconds without a progress heartbeat after which a running job is marked failed (its worker died).
AICELL_JOB_STALE_AFTER = env.int("AICELL_JOB_STALE_AFTER", default=600)
# Dataset interchange (README "Interchange"): bounds on imported archives (zip bombs) and export settings.
AICELL_IMPORT_MAX_ARCHIVE_BYTES = env.int("AICELL_IMPORT_MAX_ARCHIVE_BYTES", default=4 * 1024**3)
AICELL_IMPORT_MAX_ENTRIES = env.int("AICELL_IMPORT_MAX_ENTRIES", default=200_000)
AICELL_IMPORT_MAX_EXPANDED_BYTES = env.int("AICELL_IMPORT_MAX_EXPANDED_BYTES", default=8 * 1024**3)
AICELL_IMPORT_MAX_ENTRY_BYTES = env.int("AICELL_IMPORT_MAX_ENTRY_BYTES", default=1024**3)
AICELL_IMPORT_MAX_RATIO = env.float("AICELL_IMPORT_MAX_RATIO", default=100.0)
AICELL_EXPORT_ZIP_LEVEL = env.int("AICELL_EXPORT_ZIP_LEVEL", default=6)
# Keyed pseudonyms of cases, smears and annotators in exports; stable while this key is (set it explicitly so that
# rotating DJANGO_SECRET_KEY does not change them).
AICELL_EXPORT_PSEUDONYM_KEY = env.str(
    "AICELL_EXPORT_PSEUDONYM_KEY", default=hashlib.sha256(f"aicell-export-pseudonyms:{SECRET_KEY}".encode()).hexdigest()
)
# Scratch space for exports being written (they move into storage under exports/ when complete).
AICELL_TMP_DIR = Path(env.str("AICELL_TMP_DIR", default=str(VAR_DIR / "tmp")))
CELERY_BEAT_SCHEDULE = {
    "fail-stale-jobs": {"task": "aicell.fail_stale_jobs", "schedule": 60.0},
    "verify-storage-weekly": {"task": "annotations.verify_storage", "schedule": 7 * 24 * 3600.0},
}

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
