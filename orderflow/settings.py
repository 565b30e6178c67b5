"""One settings object for every process of the system, read from `ORDERFLOW_*` variables."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
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
    # How long an API process trusts a key it checked (revoking clears its own cache at once).
    api_key_cache_seconds: float = 10.0
    # The key the `orderflow` staff commands send; empty means the dev stack's staff key.
    api_key: str = ""
    # How long an Idempotency-Key and the answer stored under it are kept (at least a day).
    idempotency_ttl_seconds: float = Field(default=24 * 3600.0, gt=0)
    # A request renews its claim on its key every third of this while it runs; a claim not
    # renewed this long is taken to have died with its API process, and a retry runs it again.
    idempotency_lease_seconds: float = Field(default=15.0, gt=0)
    # An update not accepted by its order within this long makes the API look why; when two
    # looks in a row find the order's workflow task failing, or no worker polling for it, the
    # API answers at once instead of waiting out the whole update timeout.
    update_accept_seconds: float = Field(default=2.0, gt=0)
    # Seals the console's session cookies and derives its form tokens; every API process of a
    # deployment needs the same one. Empty: a new one per process (sessions end on restart).
    console_secret: str = ""
    # An edit an order has not taken this long after it was sent is refused when it comes
    # (the workflow checks the deadline), so the API can answer 503 "nothing changed".
    update_expire_seconds: float = Field(default=5.0, gt=0)
    # How far the API's clock may be from the Temporal server's.
    clock_skew_seconds: float = Field(default=1.0, ge=0)

    payment_url: str = "http://127.0.0.1:8101"
    payment_port: int = 8101
    carrier_url: str = "http://127.0.0.1:8102"
    carrier_port: int = 8102
    # Seconds between two tracking events of one parcel in the carrier stand-in.
    carrier_step_seconds: float = 3.0

    # Shared with the carrier for signed webhooks; the dev stack makes one if none is given.
    webhook_secret: str = ""
    # Shared with the payment gateway for its signed webhooks (bank transfers that arrived).
    payment_webhook_secret: str = ""
    webhook_tolerance_seconds: int = 300

    # How an order's units are spread over warehouses: fewest_shipments or nearest_first.
    allocation_strategy: Literal["fewest_shipments", "nearest_first"] = "fewest_shipments"
    # Orders of one customer to one address placed within this many seconds ship together
    # (0: only staff merge orders).
    merge_window_seconds: float = 0.0

    # Durable timer lengths, in seconds.
    warehouse_release_seconds: float = 0.0
    after_sales_window_seconds: float = 14 * 24 * 3600.0
    review_escalate_seconds: float = 4 * 3600.0
    review_timeout_seconds: float = 24 * 3600.0
    payment_timeout_seconds: float = 3 * 24 * 3600.0
    new_payment_method_seconds: float = 24 * 3600.0
    backorder_timeout_seconds: float = 14 * 24 * 3600.0
    backorder_recheck_seconds: float = 3600.0
    # Staff are told when a supplier has not confirmed a purchase order by then.
    po_confirm_reminder_seconds: float = 2 * 24 * 3600.0
    # Per status, how long an order may stay there before staff are alerted (JSON object).
    sla_seconds: dict[str, float] = Field(
        default_factory=lambda: {
            "PENDING_REVIEW": 8 * 3600.0,
            "CONFIRMED": 24 * 3600.0,
            "PICKING": 24 * 3600.0,
            "PACKED": 48 * 3600.0,
            "SHIPPED": 10 * 24 * 3600.0,
        }
    )

    # Replenishment: days of demand averaged, days between two orders of a SKU, and the lead
    # time of a SKU no supplier is recorded for.
    replenishment_window_days: int = 28
    replenishment_review_days: int = 7
    default_lead_time_days: int = 14

    # Risk rules that hold an order for staff review.
    review_amount_over: Decimal = Decimal("1000")
    review_new_customer_amount_over: Decimal = Decimal("300")
    review_orders_per_hour: int = 5

    # Email: the SMTP server (the dev stack's stand-in by default) and who sends and gets what.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    mail_http_port: int = 8103
    mail_from: str = "orders@orderflow.example"
    staff_email: str = "staff@orderflow.example"
    outbox_poll_seconds: float = 0.5
    # The longest an order's email waits for its next workflow task (see OrderPolicy).
    mail_hold_seconds: float = Field(default=1.0, gt=0)

    # Retry ceiling for calls to third parties during an outage.
    retry_max_interval_seconds: float = 10.0
    http_timeout_seconds: float = 5.0

    # Worker processes the dev stack starts on the task queue (compose scales its own).
    worker_processes: int = Field(default=1, ge=1, le=32)
    worker_max_concurrent_activities: int = 200
    # Workflows a worker keeps in memory between their tasks, about 0.2 MiB each; one evicted
    # replays its history on its next task.
    worker_max_cached_workflows: int = Field(default=3_000, ge=1)

    log_level: str = "INFO"

    @property
    def api_base_url(self) -> str:
        """The URL other services use to reach the API."""
        return self.public_url or f"http://{self.api_host}:{self.api_port}"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
