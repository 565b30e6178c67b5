"""The worker: the one place where workflows and activities meet their dependencies."""

from __future__ import annotations

import asyncio
import logging
import signal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import PollerBehaviorAutoscaling, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.inventory import InventoryActivities
from activities.logistics import LogisticsActivities
from activities.outbox import OutboxDispatcher
from activities.payment import PaymentActivities
from activities.purchasing import PurchasingActivities
from activities.records import RecordActivities
from activities.risk import RiskActivities
from models.risk import RiskThresholds
from orderflow.db import make_engine, make_sessions
from orderflow.settings import Settings
from orderflow.temporal import connect
from providers.carrier import HttpCarrier
from providers.mail import SmtpMailer
from providers.payment import HttpPaymentGateway
from workflows.consolidation import ConsolidationWorkflow
from workflows.order import OrderWorkflow
from workflows.purchase_order import PurchaseOrderWorkflow
from workflows.returns import ReturnWorkflow
from workflows.shipment import ShipmentWorkflow

log = logging.getLogger(__name__)

# The workflow modules are loaded once and shared by every workflow the worker runs. The
# default sandbox loads them again for each workflow it starts or takes back into its cache:
# about 0.55 MiB and an import each time. What it guards against (a clock, randomness or I/O
# in workflow code) is checked where it is cheap: the replay tests run every recorded history
# under the full sandbox.
SHARED_WORKFLOW_CODE = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("workflows")
)

# Every workflow type the worker runs (the replay tests replay the same list).
WORKFLOWS = (
    OrderWorkflow,
    ReturnWorkflow,
    ShipmentWorkflow,
    ConsolidationWorkflow,
    PurchaseOrderWorkflow,
)


def build_worker(
    client: Client,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    gateway: HttpPaymentGateway,
    carrier: HttpCarrier,
    task_queue: str | None = None,
) -> Worker:
    """A worker for the order task queue with every activity wired to its dependencies."""
    inventory = InventoryActivities(sessions)
    risk = RiskActivities(
        sessions,
        RiskThresholds(
            amount_over=settings.review_amount_over,
            new_customer_amount_over=settings.review_new_customer_amount_over,
            orders_per_hour=settings.review_orders_per_hour,
        ),
    )
    records = RecordActivities(sessions)
    purchasing = PurchasingActivities(sessions)
    payment = PaymentActivities(gateway)
    logistics = LogisticsActivities(carrier, f"{settings.api_base_url}/webhooks/carrier")
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=list(WORKFLOWS),
        activities=[
            inventory.reserve,
            inventory.ship,
            inventory.ship_batch,
            inventory.release_batch,
            inventory.backorder,
            inventory.close_backorder,
            inventory.restock_return,
            inventory.price,
            risk.assess,
            records.save_view,
            records.enqueue_mail,
            records.merge_partners,
            records.save_return,
            records.claim_system_order,
            payment.authorize,
            payment.capture,
            payment.void,
            payment.refund,
            logistics.book,
            logistics.cancel,
            purchasing.save,
            purchasing.receive,
        ],
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_local_activities=settings.worker_max_concurrent_activities,
        max_cached_workflows=settings.worker_max_cached_workflows,
        workflow_runner=SHARED_WORKFLOW_CODE,
        # As many long polls as tasks are waiting, not a fixed five.
        workflow_task_poller_behavior=PollerBehaviorAutoscaling(),
        activity_task_poller_behavior=PollerBehaviorAutoscaling(),
    )


def build_dispatcher(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> OutboxDispatcher:
    """The outbox dispatcher that sends what order steps wrote; it runs beside each worker."""
    return OutboxDispatcher(
        sessions,
        SmtpMailer(settings.smtp_host, settings.smtp_port, timeout=settings.http_timeout_seconds),
        sender=settings.mail_from,
        staff=settings.staff_email,
        poll_seconds=settings.outbox_poll_seconds,
    )


async def run_worker(settings: Settings) -> None:
    """Run a worker until SIGINT or SIGTERM, then finish in-flight tasks and stop."""
    client = await connect(settings)
    # No ping per transaction: a connection lost with a database restart fails its activity,
    # which is retried, and the failure empties the pool of connections from before it.
    engine = make_engine(settings.database_url, pre_ping=False)
    gateway = HttpPaymentGateway(settings.payment_url, timeout=settings.http_timeout_seconds)
    carrier = HttpCarrier(settings.carrier_url, timeout=settings.http_timeout_seconds)
    sessions = make_sessions(engine)
    worker = build_worker(client, settings, sessions, gateway, carrier)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker polling task queue %s", settings.task_queue)
    async with worker:
        await build_dispatcher(settings, sessions).run(stop)
    await gateway.aclose()
    await carrier.aclose()
    await engine.dispose()
