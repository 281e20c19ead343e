"""The key that signs the desk's session cookies: from settings, else made once under var/."""

from __future__ import annotations

from services.platform.auth import dev_secret
from services.platform.settings import Settings

SESSION_KEY_FILE = "web-session-secret"


def session_secret(settings: Settings) -> str:
    return settings.web_session_secret or dev_secret(settings.var_dir, SESSION_KEY_FILE)
