from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, normalize_database_url


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"CANVASS_VAR_DIR": str(tmp_path), **env})


def test_defaults_need_nothing(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert s.provider == "sandbox"
    assert s.default_region == "IN"
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.public_base_url == "http://127.0.0.1:5000"
    assert s.tts == "espeak"
    assert s.database_url == f"sqlite:///{tmp_path / 'canvass.db'}"
    assert s.twilio_api_base == "https://api.twilio.com"


def test_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = settings(tmp_path).secret_key
    assert len(first) >= 40
    assert settings(tmp_path).secret_key == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert settings(tmp_path, SECRET_KEY="x").secret_key == "x"  # any non-empty value


def test_plain_postgresql_urls_work_as_given() -> None:
    assert normalize_database_url("postgresql://user@host/db") == "postgresql+psycopg://user@host/db"
    assert normalize_database_url("postgres://user@host/db") == "postgresql+psycopg://user@host/db"
    assert normalize_database_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"CANVASS_PROVIDER": "twilio"}, "TWILIO_ACCOUNT_SID"),
        ({"CANVASS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC" + "0" * 32}, "TWILIO_AUTH_TOKEN"),
        (
            {"CANVASS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t"},
            "PUBLIC_BASE_URL",
        ),
        ({"CANVASS_PROVIDER": "carrier-pigeon"}, "CANVASS_PROVIDER"),
        ({"CANVASS_TTS": "festival"}, "CANVASS_TTS"),
        ({"CANVASS_DEFAULT_REGION": "India"}, "CANVASS_DEFAULT_REGION"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"PUBLIC_BASE_URL": "ftp://x"}, "PUBLIC_BASE_URL"),
        ({"TWILIO_API_BASE": "localhost:4010"}, "TWILIO_API_BASE"),
        ({"TWILIO_ACCOUNT_SID": "sid"}, "TWILIO_ACCOUNT_SID"),
        ({"CANVASS_RETENTION_DAYS": "0"}, "CANVASS_RETENTION_DAYS"),
        ({"CANVASS_RETENTION_DAYS": "a month"}, "CANVASS_RETENTION_DAYS"),
        ({"TWILIO_TIMEOUT_S": "0"}, "TWILIO_TIMEOUT_S"),
        ({"TWILIO_TIMEOUT_S": "ten"}, "TWILIO_TIMEOUT_S"),
        ({"CANVASS_VOICE_CPS": "0"}, "CANVASS_VOICE_CPS"),
        ({"CANVASS_VOICE_CPS": "fast"}, "CANVASS_VOICE_CPS"),
    ],
)
def test_bad_settings_name_the_variable(tmp_path: Path, env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as err:
        settings(tmp_path, **env)
    assert err.value.variable == variable
    assert str(err.value).startswith(variable + ":")


def test_twilio_with_everything_is_accepted(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        CANVASS_PROVIDER="twilio",
        TWILIO_ACCOUNT_SID="AC" + "a" * 32,
        TWILIO_AUTH_TOKEN="secret",
        PUBLIC_BASE_URL="https://canvass.example.org/",
        TWILIO_API_BASE="http://127.0.0.1:4010",
        TWILIO_TIMEOUT_S="2.5",
    )
    assert s.public_base_url == "https://canvass.example.org"
    assert s.cookies_secure
    assert s.twilio_api_base == "http://127.0.0.1:4010"
    assert s.twilio_timeout_s == 2.5


def test_overrides_win_over_environment(tmp_path: Path) -> None:
    s = Settings.from_env({"CANVASS_VAR_DIR": str(tmp_path), "CANVASS_DEFAULT_REGION": "US"}, {"default_region": "GB"})
    assert s.default_region == "GB"
