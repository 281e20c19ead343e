"""Configuration from the environment, read once at start-up.

Embedded mode (no ``DATABASE_URL``) keeps everything in SQLite under ``TSUNAGU_VAR_DIR`` and
uses the in-process bus; distributed mode needs ``DATABASE_URL`` and ``KAFKA_BOOTSTRAP_SERVERS``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    var_dir: Path = Path("var")
    database_url: str | None = None
    kafka_bootstrap_servers: str | None = None
    topic_prefix: str = "tsunagu"
    topic_partitions: int = 8
    jwt_secret: str | None = None
    jwks_url: str | None = None
    jwt_issuer: str = "tsunagu"
    jwt_audience: str = "tsunagu"
    # The OpenID provider the desk signs staff in with: its issuer URL (discovery is read there).
    oidc_issuer: str | None = None
    # The desk's confidential client at that provider, and its secret.
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    otlp_endpoint: str | None = None
    relay_poll_seconds: float = 0.02
    # A declined referral must be followed up within this many days (no silent end).
    decline_follow_up_days: int = 7
    # A referral not acknowledged within this many hours shows as overdue in the inbox.
    acknowledgement_hours: int = 72
    # Exported statistics hide counts below this, so that no person can be singled out.
    small_cell_threshold: int = 3
    # How often the sweeper looks for bases that lapsed with no event (expiry, meeting end).
    sweep_seconds: float = 60.0
    # How often the audit chain's head is signed and kept outside its database (a checkpoint):
    # an entry forged after the last checkpoint goes unnoticed at most this long.
    checkpoint_seconds: float = 60.0
    # The Ed25519 key that signs checkpoints (PEM text, or a file); else a development key
    # made under the var dir, its public key exported beside it.
    checkpoint_key: str | None = None
    checkpoint_key_file: Path | None = None
    # The public keys (a PEM bundle) a checkpoint may be signed with, old ones kept: all the
    # verifier needs.
    checkpoint_public_keys: Path | None = None
    # The desk (services/web): a session ends after this many minutes without a request.
    web_idle_minutes: float = 30.0
    # Secure cookies need HTTPS; set where the desk is served over TLS.
    web_secure_cookies: bool = False
    web_session_secret: str | None = None
    # The key that wraps every person's data keys (32 bytes, base64), or a file holding it;
    # else a development key made under the var dir. Keep it apart from the data's backups.
    key_encryption_key: str | None = None
    key_encryption_key_file: Path | None = None
    # Distributed mode: where the desk finds each service (intake, referral, meeting, views).
    service_urls: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def distributed(self) -> bool:
        return self.database_url is not None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        return cls(
            var_dir=Path(env.get("TSUNAGU_VAR_DIR", "var")),
            database_url=env.get("DATABASE_URL") or None,
            kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            topic_prefix=env.get("TSUNAGU_TOPIC_PREFIX", "tsunagu"),
            topic_partitions=int(env.get("TSUNAGU_TOPIC_PARTITIONS", "8")),
            jwt_secret=env.get("TSUNAGU_JWT_SECRET") or None,
            jwks_url=env.get("TSUNAGU_JWKS_URL") or None,
            jwt_issuer=env.get("TSUNAGU_JWT_ISSUER", "tsunagu"),
            jwt_audience=env.get("TSUNAGU_JWT_AUDIENCE", "tsunagu"),
            oidc_issuer=env.get("TSUNAGU_OIDC_ISSUER") or None,
            oidc_client_id=env.get("TSUNAGU_OIDC_CLIENT_ID") or None,
            oidc_client_secret=env.get("TSUNAGU_OIDC_CLIENT_SECRET") or None,
            otlp_endpoint=env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
            relay_poll_seconds=float(env.get("TSUNAGU_RELAY_POLL_SECONDS", "0.02")),
            decline_follow_up_days=int(env.get("TSUNAGU_DECLINE_FOLLOW_UP_DAYS", "7")),
            acknowledgement_hours=int(env.get("TSUNAGU_ACKNOWLEDGEMENT_HOURS", "72")),
            small_cell_threshold=int(env.get("TSUNAGU_SMALL_CELL_THRESHOLD", "3")),
            sweep_seconds=float(env.get("TSUNAGU_SWEEP_SECONDS", "60")),
            checkpoint_seconds=float(env.get("TSUNAGU_CHECKPOINT_SECONDS", "60")),
            checkpoint_key=env.get("TSUNAGU_CHECKPOINT_KEY") or None,
            checkpoint_key_file=_path(env.get("TSUNAGU_CHECKPOINT_KEY_FILE")),
            checkpoint_public_keys=_path(env.get("TSUNAGU_CHECKPOINT_PUBLIC_KEYS")),
            web_idle_minutes=float(env.get("TSUNAGU_WEB_IDLE_MINUTES", "30")),
            web_secure_cookies=env.get("TSUNAGU_WEB_SECURE_COOKIES", "") == "1",
            web_session_secret=env.get("TSUNAGU_WEB_SESSION_SECRET") or None,
            key_encryption_key=env.get("TSUNAGU_KEY_ENCRYPTION_KEY") or None,
            key_encryption_key_file=_path(env.get("TSUNAGU_KEY_ENCRYPTION_KEY_FILE")),
            service_urls={
                service: env[f"TSUNAGU_{service.upper()}_URL"]
                for service in ("intake", "referral", "meeting", "views")
                if env.get(f"TSUNAGU_{service.upper()}_URL")
            },
        )


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
