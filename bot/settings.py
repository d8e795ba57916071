"""Settings: every knob canvass reads, parsed and checked once at start-up.

Only ``web.create_app`` and the worker start call :meth:`Settings.from_env`; all other
code receives a ``Settings`` instance. Nothing here runs at import time.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

PROVIDERS = ("sandbox", "twilio")
# The longest TWILIO_TIMEOUT_S may be: a batch job must outlive its slowest send
# (campaigns.planner.JOB_MARGIN_S, checked when a worker starts).
MAX_TWILIO_TIMEOUT_S = 120
MAX_VOICE_CPS = 1000.0
MAX_CAMPAIGN_LANES = 64
TTS_ENGINES = ("espeak", "gtts", "twilio")
LOG_FORMATS = ("text", "json")


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


@dataclasses.dataclass(frozen=True)
class Settings:
    """The validated configuration of one canvass process."""

    database_url: str
    redis_url: str
    secret_key: str
    public_base_url: str
    provider: str
    default_region: str
    twilio_account_sid: str | None
    twilio_auth_token: str | None
    twilio_api_base: str
    twilio_content_api_base: str
    tts: str
    actions_package: str | None
    rasa_action_endpoint: str | None
    var_dir: Path
    testing: bool = False
    # Message bodies older than this are purged (statuses, times and funnel steps stay).
    retention_days: int = 30
    # Send windows and blackouts every campaign obeys, whatever its own settings say.
    send_windows: tuple[Any, ...] = ()
    blackouts: tuple[Any, ...] = ()
    # How long a call to Twilio's REST API may wait for an answer (a send that times out
    # is "unknown", never sent again: its status callback settles it).
    twilio_timeout_s: float = 10.0
    # Calls placed per second by the whole account (Twilio's CPS limit; 1 for a new account).
    voice_cps: float = 1.0
    # Batches of one campaign queued (or running) at a time; the rest wait their turn, so
    # a campaign launched during a big one is served within about one batch's time.
    campaign_lanes: int = 2
    # How log lines are written: "text" (key=value fields) or "json" (one object per line).
    log_format: str = "text"

    @property
    def cookies_secure(self) -> bool:
        """Send the session cookie over HTTPS only when we are served over HTTPS."""
        return self.public_base_url.startswith("https://")

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        *,
        var_dir: Path | None = None,
    ) -> Settings:
        """Build settings from environment variables; ``overrides`` win over them.

        Override keys are the environment variable names (``DATABASE_URL``) or the
        field names (``database_url``). Raises ``SettingsError`` naming the variable.
        """
        env: dict[str, Any] = dict(os.environ if environ is None else environ)
        for key, value in (overrides or {}).items():
            env[_FIELD_VARIABLES.get(key, key)] = value

        def get(name: str) -> str | None:
            value = env.get(name)
            if value is None:
                return None
            value = str(value).strip()
            return value or None

        var = Path(env.get("CANVASS_VAR_DIR") or var_dir or Path.cwd() / "var")
        provider = (get("CANVASS_PROVIDER") or "sandbox").lower()
        if provider not in PROVIDERS:
            raise SettingsError("CANVASS_PROVIDER", f"must be one of {', '.join(PROVIDERS)}, got {provider!r}")
        tts = (get("CANVASS_TTS") or "espeak").lower()
        if tts not in TTS_ENGINES:
            raise SettingsError("CANVASS_TTS", f"must be one of {', '.join(TTS_ENGINES)}, got {tts!r}")
        region = (get("CANVASS_DEFAULT_REGION") or "IN").upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise SettingsError(
                "CANVASS_DEFAULT_REGION", f"must be a two-letter region such as IN or US, got {region!r}"
            )

        public = (get("PUBLIC_BASE_URL") or "http://127.0.0.1:5000").rstrip("/")
        _check_http_url("PUBLIC_BASE_URL", public)
        api_base = (get("TWILIO_API_BASE") or "https://api.twilio.com").rstrip("/")
        _check_http_url("TWILIO_API_BASE", api_base)
        content_base = (get("TWILIO_CONTENT_API_BASE") or "https://content.twilio.com").rstrip("/")
        _check_http_url("TWILIO_CONTENT_API_BASE", content_base)

        sid, token = get("TWILIO_ACCOUNT_SID"), get("TWILIO_AUTH_TOKEN")
        if provider == "twilio":
            if not sid:
                raise SettingsError("TWILIO_ACCOUNT_SID", "is required when CANVASS_PROVIDER=twilio")
            if not token:
                raise SettingsError("TWILIO_AUTH_TOKEN", "is required when CANVASS_PROVIDER=twilio")
            if not get("PUBLIC_BASE_URL"):
                raise SettingsError(
                    "PUBLIC_BASE_URL",
                    "is required when CANVASS_PROVIDER=twilio (Twilio must reach our webhooks)",
                )
        if sid and not (sid.startswith("AC") and len(sid) == 34):
            raise SettingsError("TWILIO_ACCOUNT_SID", f"must look like AC followed by 32 characters, got {sid!r}")

        database_url = normalize_database_url(get("DATABASE_URL") or f"sqlite:///{var / 'canvass.db'}")
        redis_url = get("REDIS_URL") or "redis://127.0.0.1:6379/0"
        if urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
            raise SettingsError("REDIS_URL", f"must start with redis://, rediss:// or unix://, got {redis_url!r}")

        retention_text = get("CANVASS_RETENTION_DAYS") or "30"
        if not retention_text.isdigit() or not 1 <= int(retention_text) <= 3650:
            raise SettingsError(
                "CANVASS_RETENTION_DAYS", f"must be a whole number of days from 1 to 3650, got {retention_text!r}"
            )
        windows, blackouts = _policy(get("CANVASS_SEND_WINDOW"), get("CANVASS_BLACKOUTS"))
        twilio_timeout = _positive(get, "TWILIO_TIMEOUT_S", "10", MAX_TWILIO_TIMEOUT_S, "a number of seconds")
        voice_cps = _positive(get, "CANVASS_VOICE_CPS", "1", MAX_VOICE_CPS, "calls per second")
        lanes_text = get("CANVASS_CAMPAIGN_LANES") or "2"
        if not lanes_text.isdigit() or not 1 <= int(lanes_text) <= MAX_CAMPAIGN_LANES:
            raise SettingsError(
                "CANVASS_CAMPAIGN_LANES",
                f"must be a whole number of batches from 1 to {MAX_CAMPAIGN_LANES}, got {lanes_text!r}",
            )
        log_format = (get("CANVASS_LOG_FORMAT") or "text").lower()
        if log_format not in LOG_FORMATS:
            raise SettingsError("CANVASS_LOG_FORMAT", f"must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
        secret = get("SECRET_KEY") or _generated_secret(var)
        return cls(
            database_url=database_url,
            redis_url=redis_url,
            secret_key=secret,
            public_base_url=public,
            provider=provider,
            default_region=region,
            twilio_account_sid=sid,
            twilio_auth_token=token,
            twilio_api_base=api_base,
            twilio_content_api_base=content_base,
            tts=tts,
            actions_package=get("CANVASS_ACTIONS"),
            rasa_action_endpoint=get("RASA_ACTION_ENDPOINT"),
            var_dir=var,
            testing=str(env.get("TESTING", "")).lower() in ("1", "true", "yes"),
            retention_days=int(retention_text),
            send_windows=windows,
            blackouts=blackouts,
            twilio_timeout_s=twilio_timeout,
            voice_cps=voice_cps,
            campaign_lanes=int(lanes_text),
            log_format=log_format,
        )


# Settings field -> the environment variable it comes from (for overrides by field name).
_FIELD_VARIABLES = {
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "secret_key": "SECRET_KEY",
    "public_base_url": "PUBLIC_BASE_URL",
    "provider": "CANVASS_PROVIDER",
    "default_region": "CANVASS_DEFAULT_REGION",
    "twilio_account_sid": "TWILIO_ACCOUNT_SID",
    "twilio_auth_token": "TWILIO_AUTH_TOKEN",
    "twilio_api_base": "TWILIO_API_BASE",
    "twilio_content_api_base": "TWILIO_CONTENT_API_BASE",
    "tts": "CANVASS_TTS",
    "actions_package": "CANVASS_ACTIONS",
    "rasa_action_endpoint": "RASA_ACTION_ENDPOINT",
    "var_dir": "CANVASS_VAR_DIR",
    "testing": "TESTING",
    "retention_days": "CANVASS_RETENTION_DAYS",
    "send_windows": "CANVASS_SEND_WINDOW",
    "blackouts": "CANVASS_BLACKOUTS",
    "twilio_timeout_s": "TWILIO_TIMEOUT_S",
    "voice_cps": "CANVASS_VOICE_CPS",
    "campaign_lanes": "CANVASS_CAMPAIGN_LANES",
    "log_format": "CANVASS_LOG_FORMAT",
}


def _positive(get: Any, name: str, default: str, maximum: float, what: str) -> float:
    """A number above 0 and at most ``maximum`` from variable ``name``; else a ``SettingsError`` naming it."""
    text = get(name) or default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= maximum:
        raise SettingsError(name, f"must be {what} above 0 and up to {maximum:g}, got {text!r}")
    return value


def _policy(windows: str | None, blackouts: str | None) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    from bot.sendwindows import PolicyError, load_blackouts_file, parse_setting

    try:
        parsed_windows = parse_setting(windows) if windows else ()
    except PolicyError as exc:
        raise SettingsError("CANVASS_SEND_WINDOW", str(exc).removeprefix("send_window: ")) from None
    try:
        parsed_blackouts = load_blackouts_file(blackouts) if blackouts else ()
    except OSError as exc:
        raise SettingsError("CANVASS_BLACKOUTS", f"cannot read {blackouts!r}: {exc.strerror}") from None
    except (PolicyError, ValueError) as exc:
        raise SettingsError("CANVASS_BLACKOUTS", f"{blackouts}: {exc}") from None
    return parsed_windows, parsed_blackouts


def normalize_database_url(url: str) -> str:
    """Map plain ``postgresql://`` (and ``postgres://``) URLs onto the psycopg 3 driver.

    SQLAlchemy would otherwise pick psycopg2, which canvass does not install.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise SettingsError(
            "DATABASE_URL", f"must be a URL such as sqlite:///path or postgresql://host/db, got {url!r}"
        )
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+psycopg://{rest}"
    if scheme.startswith("postgresql+") or scheme.startswith("sqlite"):
        return url
    raise SettingsError("DATABASE_URL", f"only SQLite and PostgreSQL are supported, got scheme {scheme!r}")


def _check_http_url(variable: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(variable, f"must be an http(s) URL, got {value!r}")


def _generated_secret(var: Path) -> str:
    """Return the development secret kept under var/, creating it on first use."""
    path = var / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    var.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting together must agree on one secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secret)
    return secret
