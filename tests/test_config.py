"""Settings: every one documented in .env.example with its real default."""

import re
from pathlib import Path

import pytest

from app.core.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def _documented() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z_]+)=(.*)$", line)
        if match:
            found[match.group(1)] = match.group(2) or None
    return found


def test_every_setting_is_documented_with_its_default() -> None:
    documented = _documented()
    for name, field in Settings.model_fields.items():
        env = name.upper()
        assert env in documented, f"{env} missing from .env.example"
        default = field.default
        if default is None:
            continue
        value = default.get_secret_value() if hasattr(default, "get_secret_value") else default
        assert documented[env] == str(value), env


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@h/db")
    monkeypatch.setenv("MAX_BODY_BYTES", "2048")
    settings = Settings()
    assert settings.database_url == "postgresql+asyncpg://u@h/db"
    assert settings.max_body_bytes == 2048
    assert not settings.is_sqlite


def test_console_frame_ancestors_are_checked_and_normalised() -> None:
    assert Settings(console_frame_ancestors="none").console_frame_ancestors == "'none'"
    both = Settings(console_frame_ancestors="self  https://intranet.example:8443")
    assert both.console_frame_ancestors == "'self' https://intranet.example:8443"
    for bad in ("'self'; script-src *", "'none' 'self'", "", "https://a.example/path"):
        with pytest.raises(ValueError, match="CONSOLE_FRAME_ANCESTORS"):
            Settings(console_frame_ancestors=bad)
