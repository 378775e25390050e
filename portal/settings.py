"""Settings for the merchant portal, driven by environment variables (see the README's table).

The defaults give the embedded run: SQLite, a Celery worker on a file-system broker (no server
to install), SMS to a local outbox and the ACP sandbox acquirer. ``PORTAL_ENV=production``
turns the safe defaults off and fails loudly when a secret or a service is missing.
"""

import copy
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("PORTAL_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()

PORTAL_ENV = env.str("PORTAL_ENV", default="development")
if PORTAL_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("PORTAL_ENV must be 'development' or 'production'.")
PRODUCTION = PORTAL_ENV == "production"

DEBUG = env.bool("DJANGO_DEBUG", default=False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off when PORTAL_ENV=production.")


def _required(name: str) -> str:
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(f"{name} must be set when PORTAL_ENV=production.")
    return value


if PRODUCTION:
    SECRET_KEY = _required("DJANGO_SECRET_KEY")
else:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="development-only-key-not-for-production-use-0123456789")

# Key of the HMAC-SHA256 that lets the ledger find a card by its full number without storing it.
if PRODUCTION:
    CARD_HASH_KEY = _required("CARD_HASH_KEY")
else:
    CARD_HASH_KEY = env.str("CARD_HASH_KEY", default="development-only-card-hash-key-not-for-production")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tables2",
    "django_filters",
    "django_htmx",
    "bootstrap",
    "portal.core",
    "portal.accounts",
    "portal.audit",
    "portal.approvals",
    "portal.batches",
    "payments",
    "refunds",
    "reconciliation",
    "reconciliation.upstream",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.core.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before the session-lifetime middleware, which tells the user why they were signed out.
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "portal.accounts.middleware.SessionLifetimeMiddleware",
    "portal.accounts.middleware.UserLanguageMiddleware",
    "portal.accounts.middleware.TwoFactorRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.core.context_processors.portal",
                "portal.approvals.context_processors.approvals",
                "payments.context_processors.downloads",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
if PRODUCTION:
    _required("DATABASE_URL")
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web process and the worker share the file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"].setdefault("TEST", {})["NAME"] = env.str("SQLITE_TEST_NAME", default="")
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache --------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if PRODUCTION and not REDIS_URL:
    _required("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Accounts, passwords, sessions --------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "portal.accounts.backends.PortalModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
PASSWORD_MIN_LENGTH = 12
PASSWORD_HISTORY_DEPTH = 4
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": PASSWORD_MIN_LENGTH},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "portal.accounts.validators.LetterAndDigitValidator"},
    {"NAME": "portal.accounts.validators.PasswordHistoryValidator"},
    # Username, organisation code and names, product words (ASVS 6.2.11); every set path validates.
    {"NAME": "portal.accounts.validators.ContextWordsValidator"},
]
PASSWORD_RESET_TIMEOUT = 3600

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "core:home"
LOGOUT_REDIRECT_URL = "accounts:login"

SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_IDLE_SECONDS = env.int("SESSION_IDLE_SECONDS", default=15 * 60)
SESSION_ABSOLUTE_SECONDS = env.int("SESSION_ABSOLUTE_SECONDS", default=12 * 60 * 60)
# The cookie lives as long as the absolute limit; the idle limit is enforced (and audited)
# by SessionLifetimeMiddleware so that an expiry can be recorded against the user.
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_SECONDS
# Saved when changed only: SessionLifetimeMiddleware refreshes the activity stamp once a minute.
SESSION_SAVE_EVERY_REQUEST = False
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
STEP_UP_MAX_AGE_SECONDS = env.int("STEP_UP_MAX_AGE_SECONDS", default=5 * 60)
# Accounts without a sign-in for more than this many days are disabled by a daily job (PCI DSS 8.2.6: 90 at most).
ACCOUNT_INACTIVE_DAYS = env.int("ACCOUNT_INACTIVE_DAYS", default=90)
if ACCOUNT_INACTIVE_DAYS < 1 or (PRODUCTION and ACCOUNT_INACTIVE_DAYS > 90):
    raise ImproperlyConfigured("ACCOUNT_INACTIVE_DAYS must be at least 1, and at most 90 when PORTAL_ENV=production.")

# Lockout: 10 failures per username (password and second-factor codes counted together),
# for 30 minutes. Unknown user, wrong password and locked account answer alike.
AXES_FAILURE_LIMIT = env.int("LOCKOUT_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOCKOUT_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = ["username"]
# Not on the password step: that would wipe the code failures counted so far. The second-factor
# view resets the username's failures once both factors have succeeded.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_CALLABLE = "portal.accounts.views.lockout_response"
AXES_USERNAME_FORM_FIELD = "username"
AXES_VERBOSE = False
AXES_ENABLE_ADMIN = False
# Locking by IP as well would let one attacker lock out a whole office behind one address;
# credential stuffing is slowed by the per-username lock and the login throttle instead.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_IPWARE_PROXY_COUNT = env.int("PROXY_COUNT", default=0)

# Second factor
OTP_SMS_TOKEN_VALIDITY = 300
OTP_SMS_COOLDOWN_DURATION = 60
OTP_SMS_THROTTLE_FACTOR = 1
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Merchant Portal")
SMS_DAILY_CAP = env.int("SMS_DAILY_CAP", default=20)
# Per client IP and Beijing day, all phones together (security A7); generous for an office behind one NAT.
SMS_DAILY_CAP_PER_IP = env.int("SMS_DAILY_CAP_PER_IP", default=200)

# SMS gateway: outbox (embedded default), aliyun, http
SMS_BACKEND = env.str("SMS_BACKEND", default="outbox")
if PRODUCTION and SMS_BACKEND == "outbox":
    raise ImproperlyConfigured("SMS_BACKEND must be 'aliyun' or 'http' when PORTAL_ENV=production.")
SMS_HTTP_URL = env.str("SMS_HTTP_URL", default="")
SMS_HTTP_SECRET = env.str("SMS_HTTP_SECRET", default="")
SMS_HTTP_TIMEOUT = env.float("SMS_HTTP_TIMEOUT", default=5.0)
SMS_HTTP_RETRIES = env.int("SMS_HTTP_RETRIES", default=3)
ALIYUN_ACCESS_KEY_ID = env.str("ALIYUN_ACCESS_KEY_ID", default="")
ALIYUN_ACCESS_KEY_SECRET = env.str("ALIYUN_ACCESS_KEY_SECRET", default="")
ALIYUN_SMS_ENDPOINT = env.str("ALIYUN_SMS_ENDPOINT", default="dysmsapi.aliyuncs.com")
ALIYUN_SMS_SIGN_NAME = env.str("ALIYUN_SMS_SIGN_NAME", default="")
ALIYUN_SMS_TEMPLATE_CODE = env.str("ALIYUN_SMS_TEMPLATE_CODE", default="")
ALIYUN_SMS_PROTOCOL = env.str("ALIYUN_SMS_PROTOCOL", default="https")

# --- Internationalisation -----------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "portal_language"
LANGUAGE_COOKIE_SAMESITE = "Lax"
USE_I18N = True
TIME_ZONE = "UTC"
BUSINESS_TIME_ZONE = "Asia/Shanghai"
USE_TZ = True

# --- Static and uploaded files --------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Uploaded and generated files live outside the web root and are served only by views
# that check the user's organisation; there is deliberately no MEDIA_URL route.
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=50 * 1024 * 1024)
# Transaction detail downloads up to this many rows stream at once; larger ones become a background job.
TRANSACTIONS_EXPORT_STREAM_LIMIT = 50_000
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

# Batch files (portal.batches): raw uploads encrypted at rest with AES-256-GCM under this key
# (base64 of 32 bytes; `python -c "import os,base64;print(base64.b64encode(os.urandom(32)).decode())"`).
if PRODUCTION:
    BATCH_FILE_KEY = _required("BATCH_FILE_KEY")
else:
    import base64 as _b64

    from cryptography.hazmat.primitives import hashes as _hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF as _HKDF

    _dev_batch_key = _HKDF(algorithm=_hashes.SHA256(), length=32, salt=None, info=b"portal.batches.dev-key").derive(
        SECRET_KEY.encode()
    )
    BATCH_FILE_KEY = env.str("BATCH_FILE_KEY", default=_b64.b64encode(_dev_batch_key).decode())
BATCH_RAW_RETENTION_DAYS = env.int("BATCH_RAW_RETENTION_DAYS", default=30)
BATCH_XLSX_MAX_UNCOMPRESSED = env.int("BATCH_XLSX_MAX_UNCOMPRESSED", default=200 * 1024 * 1024)
BATCH_XLSX_MAX_MEMBERS = env.int("BATCH_XLSX_MAX_MEMBERS", default=1000)
BATCH_XLSX_MAX_RATIO = env.int("BATCH_XLSX_MAX_RATIO", default=200)
BATCH_CHUNK_SIZE = env.int("BATCH_CHUNK_SIZE", default=500)
BATCH_VALIDATE_CHUNK = env.int("BATCH_VALIDATE_CHUNK", default=5000)
# PostgreSQL: a file of at least this many lines is written by two connections at once (ingest._write_bulk).
BATCH_BULK_SPLIT_LINES = env.int("BATCH_BULK_SPLIT_LINES", default=100_000)

# --- Security headers -------------------------------------------------------------------
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    SESSION_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_SECURE = True
    CSRF_COOKIE_NAME = "__Host-csrftoken"
    LANGUAGE_COOKIE_SECURE = True

# --- REST API --------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["portal.core.api.IsFullyAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "portal.core.api.PortalPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.core.api_errors.exception_handler",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Merchant portal API",
    "DESCRIPTION": "Self-service API of the merchant / acquirer portal. Amounts are integers in fen.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status": name each choice set so the schema stays stable.
    "ENUM_NAME_OVERRIDES": {
        "DiscrepancyStatusEnum": "reconciliation.upstream.choices.DiscrepancyStatus",
    },
}

# --- Background jobs ----------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
if PRODUCTION and not CELERY_BROKER_URL:
    _required("CELERY_BROKER_URL")
if not CELERY_BROKER_URL:
    # Embedded default: a file-system queue under var/, so no server needs installing.
    _queue = VAR_DIR / "queue"
    (_queue / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue),
        "data_folder_out": str(_queue),
        "processed_folder": str(_queue / "processed"),
        "store_processed": False,
    }
else:
    # Longer than the longest task, so a running task is not handed to a second worker.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=4 * 3600)}
# Every task is bounded (security H5): the hard limit kills a task that runs away, well before the visibility
# timeout would hand it to a second worker; the soft limit five minutes earlier lets it end cleanly. The longest
# task measured (a 1,000,000-row XLSX download) takes about 6 minutes.
# (A test worker run with a visibility timeout of seconds, to see a killed task redelivered, gets no default limit.)
_visibility = CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout")
_default_limit = 2 * 3600 if _visibility is None or _visibility > 2 * 3600 else None
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=_default_limit)
CELERY_TASK_SOFT_TIME_LIMIT = None if CELERY_TASK_TIME_LIMIT is None else max(60, CELERY_TASK_TIME_LIMIT - 300)
if _visibility is not None and CELERY_TASK_TIME_LIMIT is not None and CELERY_TASK_TIME_LIMIT >= _visibility:
    raise ImproperlyConfigured(
        f"CELERY_TASK_TIME_LIMIT ({CELERY_TASK_TIME_LIMIT} s) must be below CELERY_VISIBILITY_TIMEOUT ({_visibility} s)"
    )
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# The worker and beat log through LOGGING below (redaction filter on every handler), not a root handler of their own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict = {
    "payments-purge-expired-exports": {"task": "payments.purge_expired_exports", "schedule": 3600.0},
}
CELERY_BEAT_SCHEDULE["approvals-expire"] = {"task": "approvals.expire_pending_approvals", "schedule": 300.0}
CELERY_BEAT_SCHEDULE["batches-purge-raw"] = {"task": "batches.purge_raw_batch_files", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE["refunds-reconcile"] = {"task": "refunds.reconcile", "schedule": 60.0}
CELERY_BEAT_SCHEDULE["refunds-sweep-staging"] = {"task": "refunds.sweep_staging", "schedule": 3600.0}
# Settlement close at 23:00 Beijing (Asia/Shanghai, UTC+8, no DST) = 15:00 UTC, CELERY_TIMEZONE being UTC.
CELERY_BEAT_SCHEDULE["reconciliation-close-day"] = {
    "task": "reconciliation.close_due_settlement_days",
    "schedule": crontab(hour=15, minute=0),
}
# Monthly statements (月账单) on the 1st at 09:30 Beijing = 01:30 UTC, for the previous month.
CELERY_BEAT_SCHEDULE["reconciliation-monthly-statements"] = {
    "task": "reconciliation.produce_monthly_statements",
    "schedule": crontab(hour=1, minute=30, day_of_month=1),
}
# What a refund gives back of the original payment's fee: "none" or "proportional".
RECON_REFUND_FEE_RETURN = env.str("RECON_REFUND_FEE_RETURN", default="none")
RECON_CATCH_UP_MAX_DAYS = env.int("RECON_CATCH_UP_MAX_DAYS", default=400)
CELERY_BEAT_SCHEDULE["recon-upstream-fetch"] = {"task": "recon_upstream.fetch_due_files", "schedule": 3600.0}
# Inactive accounts disabled daily at 02:00 Beijing = 18:00 UTC (ACCOUNT_INACTIVE_DAYS).
CELERY_BEAT_SCHEDULE["accounts-disable-inactive"] = {
    "task": "accounts.disable_inactive_users",
    "schedule": crontab(hour=18, minute=0),
}
# ACP certificates expiring within ACP_CERT_EXPIRY_WARNING_DAYS logged and audited daily at 09:00 Beijing = 01:00 UTC.
CELERY_BEAT_SCHEDULE["payments-certificate-expiry"] = {
    "task": "payments.warn_expiring_certificates",
    "schedule": crontab(hour=1, minute=0),
}

# --- Approvals (maker-checker) ------------------------------------------------------------
APPROVAL_EXPIRY_HOURS = env.int("APPROVAL_EXPIRY_HOURS", default=72)
APPROVAL_ACQUIRER_THRESHOLD_FEN = env.int("APPROVAL_ACQUIRER_THRESHOLD_FEN", default=50_000_000)

# --- Upstream reconciliation (reconciliation.upstream) -------------------------------------
# An unresolved discrepancy older than this is highlighted in the workbench.
RECON_DISCREPANCY_AGE_DAYS = env.int("RECON_DISCREPANCY_AGE_DAYS", default=3)
# The hourly fetch asks the gateway (txnType 76) for the files of this many past settlement days.
RECON_FETCH_LOOKBACK_DAYS = env.int("RECON_FETCH_LOOKBACK_DAYS", default=3)
# Dotted path of a callable (merchant, settle_date) -> (transaction id, signed fee in fen) pairs; by default the
# settlement fee rules (reconciliation.ledger.settle_line); empty: fees are not compared.
RECON_LEDGER_FEE_PROVIDER = env.str("RECON_LEDGER_FEE_PROVIDER", default="reconciliation.upstream.fees.ledger_fees")

# --- Logging ----------------------------------------------------------------------------
# No log line may carry a password, a code, a session id, a CSRF token or a card number (C4): every
# handler below passes every record through the redaction filter, and no other handler is left
# behind. Django's default handlers (a DEBUG-only console and mail_admins on "django", runserver's
# request lines on "django.server") are replaced, and the Celery worker and beat keep this
# configuration instead of installing their own unfiltered root handler (CELERY_WORKER_HIJACK_ROOT_LOGGER).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "portal.core.logging.RedactSecretsFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "django.server": {"class": "logging.StreamHandler", "formatter": "django.server"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        # The Celery worker gives these two an unfiltered handler of its own unless they already have one.
        "celery.task": {"handlers": ["console"], "propagate": False},
        "multiprocessing": {"handlers": ["console"], "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

# Off-box copy of the audit trail (security.md D6, PCI DSS 10.3.3): each audit event, once committed,
# as one RFC 5424 syslog message (facility local4, JSON body) to AUDIT_SYSLOG_ADDRESS (host:port) over
# UDP or TCP (portal.audit.sink). Unset: the "portal.audit.sink" logger has no handler, nothing is sent.
AUDIT_SYSLOG_ADDRESS = env.str("AUDIT_SYSLOG_ADDRESS", default="")
AUDIT_SYSLOG_PROTOCOL = env.str("AUDIT_SYSLOG_PROTOCOL", default="udp").lower()
if AUDIT_SYSLOG_PROTOCOL not in {"udp", "tcp"}:
    raise ImproperlyConfigured("AUDIT_SYSLOG_PROTOCOL must be udp or tcp.")


def logging_with_audit_sink(config: dict, *, address: str, protocol: str = "udp") -> dict:
    """A copy of ``config`` with the audit sink logger (a syslog handler when ``address`` is set, no
    handler and no propagation otherwise) and the redaction filter first on every handler."""
    config = copy.deepcopy(config)
    config["handlers"].pop("audit_syslog", None)
    sink = {"handlers": [], "level": "INFO", "propagate": False}
    if address:
        config["handlers"]["audit_syslog"] = {
            "class": "portal.audit.sink.AuditSyslogHandler",
            "address": address,
            "protocol": protocol,
            "facility": "local4",
        }
        sink["handlers"] = ["audit_syslog"]
    config["loggers"]["portal.audit.sink"] = sink
    for handler in config["handlers"].values():
        handler["filters"] = ["redact", *(f for f in handler.get("filters", []) if f != "redact")]
    return config


LOGGING = logging_with_audit_sink(LOGGING, address=AUDIT_SYSLOG_ADDRESS, protocol=AUDIT_SYSLOG_PROTOCOL)

# Automated review (security.md D8): a burst of failed sign-ins (wrong passwords and wrong codes) writes a
# security.alert audit event and an ERROR on the "portal.security" logger (route it to paging), checked as
# each failure is recorded (portal.audit.alerts): across all usernames, and per client IP.
SECURITY_ALERT_FAILURES = env.int("SECURITY_ALERT_FAILURES", default=20)
SECURITY_ALERT_WINDOW_SECONDS = env.int("SECURITY_ALERT_WINDOW_SECONDS", default=300)
SECURITY_ALERT_IP_FAILURES = env.int("SECURITY_ALERT_IP_FAILURES", default=SECURITY_ALERT_FAILURES)
SECURITY_ALERT_IP_WINDOW_SECONDS = env.int("SECURITY_ALERT_IP_WINDOW_SECONDS", default=SECURITY_ALERT_WINDOW_SECONDS)
_alert_numbers = (
    SECURITY_ALERT_FAILURES,
    SECURITY_ALERT_WINDOW_SECONDS,
    SECURITY_ALERT_IP_FAILURES,
    SECURITY_ALERT_IP_WINDOW_SECONDS,
)
if min(_alert_numbers) < 1:
    raise ImproperlyConfigured("SECURITY_ALERT_* settings must be at least 1.")

# --- ACP gateway and sandbox ----------------------------------------------------------------
# The embedded default talks ACP over HTTP to the built-in sandbox acquirer (payments.sandbox),
# whose CA and the portal's own signing certificate are generated on first use in SANDBOX_DIR.
# PORTAL_ENV=production forces the sandbox off: then the gateway URL, the signing certificate
# and the trusted certificates must be configured (payments.gateway.config fails loudly if not).
SANDBOX_ENABLED = False if PRODUCTION else env.bool("SANDBOX_ENABLED", default=True)
SANDBOX_DIR = Path(env.str("SANDBOX_DIR", default=str(VAR_DIR / "sandbox")))
# The network's notification schedule is in minutes (0, 1, 2, 4); the sandbox multiplies it by this.
SANDBOX_NOTIFY_TIME_SCALE = env.float("SANDBOX_NOTIFY_TIME_SCALE", default=1 / 60)
# How long a "pending" test card or amount stays in process before it succeeds.
SANDBOX_PENDING_SECONDS = env.int("SANDBOX_PENDING_SECONDS", default=20)
if SANDBOX_ENABLED:
    INSTALLED_APPS += ["payments.sandbox"]


def _sandbox_file(name: str) -> str:
    """A file of the sandbox directory in the embedded default; nothing in production."""
    return str(SANDBOX_DIR / name) if SANDBOX_ENABLED else ""


ACP_BASE_URL = env.str("ACP_BASE_URL", default="http://127.0.0.1:8000/sandbox/acp" if SANDBOX_ENABLED else "")
ACP_FILE_TRANSFER_URL = env.str("ACP_FILE_TRANSFER_URL", default="")  # empty: {ACP_BASE_URL}/filedownload/
ACP_BACK_URL = env.str("ACP_BACK_URL", default="http://127.0.0.1:8000/gateway/acp/notify/")
ACP_VERSION = env.str("ACP_VERSION", default="5.1.0")
ACP_ACCESS_TYPE = env.str("ACP_ACCESS_TYPE", default="0")
ACP_ACQ_INS_CODE = env.str("ACP_ACQ_INS_CODE", default="")
ACP_SIGN_PKCS12_PATH = env.str("ACP_SIGN_PKCS12_PATH", default="")
ACP_SIGN_PKCS12_PASSWORD = env.str("ACP_SIGN_PKCS12_PASSWORD", default="")
ACP_SIGN_KEY_PATH = env.str("ACP_SIGN_KEY_PATH", default=_sandbox_file("portal_sign.key"))
ACP_SIGN_CERT_PATH = env.str("ACP_SIGN_CERT_PATH", default=_sandbox_file("portal_sign.crt"))
ACP_ROOT_CERT_PATHS = env.list("ACP_ROOT_CERT_PATHS", default=[p for p in [_sandbox_file("root.crt")] if p])
ACP_MIDDLE_CERT_PATHS = env.list("ACP_MIDDLE_CERT_PATHS", default=[p for p in [_sandbox_file("middle.crt")] if p])
# 5.0.0 answers name their certificate by certId only.
ACP_VERIFY_CERT_PATHS = env.list("ACP_VERIFY_CERT_PATHS", default=[p for p in [_sandbox_file("sign.crt")] if p])
ACP_ALLOWED_OWNERS = env.list("ACP_ALLOWED_OWNERS", default=["中国银联股份有限公司"])
# (connect, read) seconds for calls to the gateway.
ACP_TIMEOUTS = tuple(env.list("ACP_TIMEOUTS", cast=float, default=[5.0, 30.0]))
ACP_VERIFY_TLS = env.bool("ACP_VERIFY_TLS", default=True)
# False replaces the real sleep between status queries with a no-op (tests only).
ACP_QUERY_SLEEP = env.bool("ACP_QUERY_SLEEP", default=True)
# A signing or trusted certificate expiring within this many days is a deploy-check warning and a daily audit event.
ACP_CERT_EXPIRY_WARNING_DAYS = env.int("ACP_CERT_EXPIRY_WARNING_DAYS", default=30)
if SANDBOX_ENABLED:
    CELERY_BEAT_SCHEDULE["sandbox-notify-due"] = {"task": "sandbox.notify_due", "schedule": 5.0}
