"""One settings object for every process of the system, read from `ORDERFLOW_*` variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every port, address, secret and timer length of the system."""

    model_config = SettingsConfigDict(env_prefix="ORDERFLOW_", extra="ignore")

    # Where the dev stack keeps PostgreSQL, Temporal's state file and the stand-ins' ledgers.
    data_dir: Path = Path(".orderflow")
    # Empty means: the dev stack's embedded PostgreSQL in data_dir.
    database_url: str = ""

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233
    task_queue: str = "orders"

    # The address every HTTP service of ours binds to (the API and the stand-ins).
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Where third parties (the carrier) post webhooks; defaults to the API's own address.
    public_url: str = ""
    max_body_bytes: int = 64 * 1024

    payment_url: str = "http://127.0.0.1:8101"
    payment_port: int = 8101
    carrier_url: str = "http://127.0.0.1:8102"
    carrier_port: int = 8102
    # Seconds between two tracking events of one parcel in the carrier stand-in.
    carrier_step_seconds: float = 3.0

    # Shared with the carrier for signed webhooks; the dev stack makes one if none is given.
    webhook_secret: str = ""
    webhook_tolerance_seconds: int = 300

    # Durable timer lengths, in seconds.
    warehouse_release_seconds: float = 0.0
    after_sales_window_seconds: float = 14 * 24 * 3600.0

    # Retry ceiling for calls to third parties during an outage.
    retry_max_interval_seconds: float = 10.0
    http_timeout_seconds: float = 5.0

    worker_max_concurrent_activities: int = 200
    worker_max_cached_workflows: int = 10_000

    log_level: str = "INFO"

    @property
    def api_base_url(self) -> str:
        """The URL other services use to reach the API."""
        return self.public_url or f"http://{self.api_host}:{self.api_port}"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
