"""What a chaos run does: how many orders, which faults, and the stack's short timers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class ChaosConfig:
    """Every knob of a chaos run; the defaults are the long run of `python -m bench.chaos`."""

    orders: int = 300
    seed: int = 1
    # Orders placed per second, spread evenly.
    rate: float = 2.0
    worker_kills: int = 4
    api_restarts: int = 2
    temporal_restarts: int = 1
    payment_outages: int = 1
    carrier_outages: int = 1
    # SIGKILL, then a restart on the same data: PostgreSQL's directory, Temporal's file.
    postgres_kills: int = 2
    temporal_kills: int = 1
    # Two things at once: the worker killed while the gateway answers 503, Temporal killed
    # while the worker is down, the API killed while edits are being sent to it.
    worker_kills_in_outage: int = 1
    temporal_kills_worker_down: int = 1
    api_kills_with_edits: int = 2
    # How long each fault keeps its process down (restarting it takes a little longer).
    worker_down_seconds: float = 2.0
    api_down_seconds: float = 1.0
    temporal_down_seconds: float = 3.0
    postgres_down_seconds: float = 3.0
    payment_outage_seconds: float = 15.0
    carrier_outage_seconds: float = 15.0
    # The API kill waits for this many edits to be sent at once (or for `edit_wait_seconds`).
    edits_in_flight: int = 3
    edit_wait_seconds: float = 10.0
    # Faults keep coming this long after the last order was placed.
    fault_tail_seconds: float = 25.0
    # The stack's timers, short so an order completes in seconds.
    carrier_step_seconds: float = 2.0
    after_sales_seconds: float = 2.0
    warehouse_release_seconds: float = 4.0
    new_payment_method_seconds: float = 45.0
    # How long the run waits for every order to settle after the last fault.
    settle_seconds: float = 600.0
    # How long one order's script waits for a status before it gives up on its step.
    step_seconds: float = 600.0
    # Where the stack keeps its data, kept after the run; a temporary directory when None.
    data_dir: Path | None = None

    def stack_settings(self) -> dict[str, str]:
        """`ORDERFLOW_*` settings of every process (without the prefix)."""
        return {
            "carrier_step_seconds": str(self.carrier_step_seconds),
            "after_sales_window_seconds": str(self.after_sales_seconds),
            "warehouse_release_seconds": str(self.warehouse_release_seconds),
            "new_payment_method_seconds": str(self.new_payment_method_seconds),
            # Unpaid pay-later orders must still be waiting when the run checks them.
            "payment_timeout_seconds": "86400",
            # Backorders wait for the run's purchase order, however late it comes.
            "backorder_timeout_seconds": "86400",
            "backorder_recheck_seconds": "5",
            # After an outage, calls are retried soon enough for the run to finish.
            "retry_max_interval_seconds": "2",
            "outbox_poll_seconds": "0.2",
            # A request whose API process died is run again by a retry with its key after this
            # long (the same Temporal update id, so it is not done twice): soon, in this run.
            "idempotency_lease_seconds": "6",
            # A few customers place many orders: no risk review, no SLA alerts.
            "review_amount_over": "1000000",
            "review_new_customer_amount_over": "1000000",
            "review_orders_per_hour": "1000000",
            "sla_seconds": "{}",
        }
