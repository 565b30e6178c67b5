"""The SMTP stand-in, driven over real SMTP by the mail client and read over its HTTP view."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from providers.mail import MailRejected, MailUnavailable, OutgoingMail, SmtpMailer
from providers.smtp_standin import SmtpStandin, create_app

REPO = Path(__file__).resolve().parents[2]
SENDER = "Orderflow <orders@orderflow.example>"


def _mail(
    key: str, to: str = "kunde@example.com", subject: str = "Order confirmed"
) -> OutgoingMail:
    return OutgoingMail(
        message_id=key, sender=SENDER, to=to, subject=subject, text=f"Hello, this is {key}."
    )


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[SmtpStandin]:
    server = SmtpStandin(tmp_path / "smtp.sqlite", port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def http(standin: SmtpStandin) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(standin))
    async with httpx.AsyncClient(transport=transport, base_url="http://smtp-standin") as client:
        yield client


@pytest.fixture
def mailer(standin: SmtpStandin) -> SmtpMailer:
    return SmtpMailer("127.0.0.1", standin.port, timeout=2.0)


async def _messages(http: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await http.get("/messages", params=params)
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


async def test_a_message_arrives_whole(http: httpx.AsyncClient, mailer: SmtpMailer) -> None:
    mail = OutgoingMail(
        message_id="order-SO-1.confirmed",
        sender=SENDER,
        to="Jürgen Kunde <kunde@example.com>",
        subject="Bestellung bestätigt ✓",
        text="Grüße, 你好\nSecond line",
        headers={"X-Orderflow-Kind": "order_confirmed"},
    )
    await mailer.send(mail)

    # The stand-in answers DATA only once the message is stored, so it is there already.
    [message] = await _messages(http)
    assert message["message_id"] == "order-SO-1.confirmed@orderflow"
    assert message["from"] == "orders@orderflow.example"
    assert message["to"] == "kunde@example.com"
    assert message["subject"] == "Bestellung bestätigt ✓"
    assert message["text"].rstrip("\n") == "Grüße, 你好\nSecond line"
    assert message["headers"]["X-Orderflow-Kind"] == "order_confirmed"
    assert message["headers"]["To"] == "Jürgen Kunde <kunde@example.com>"
    assert parsedate_to_datetime(message["headers"]["Date"]).tzinfo is not None
    assert datetime.fromisoformat(message["received_at"]).tzinfo is not None

    response = await http.get("/messages/order-SO-1.confirmed@orderflow")
    assert response.status_code == 200
    single = response.json()
    assert single["copies"] == 1
    assert "Message-ID: <order-SO-1.confirmed@orderflow>" in single["raw"]
    assert "Date: " in single["raw"]
    # Angle brackets, as in the header, find it too.
    assert (await http.get("/messages/<order-SO-1.confirmed@orderflow>")).status_code == 200
    missing = await http.get("/messages/nothing@orderflow")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


async def test_a_duplicate_is_kept_and_counted(http: httpx.AsyncClient, mailer: SmtpMailer) -> None:
    await mailer.send(_mail("order-SO-2.shipped"))
    await mailer.send(_mail("order-SO-2.shipped"))
    response = await http.get("/messages/order-SO-2.shipped@orderflow")
    assert response.json()["copies"] == 2
    assert len(await _messages(http, message_id="order-SO-2.shipped@orderflow")) == 2


async def test_filters_by_recipient_and_subject(
    http: httpx.AsyncClient, mailer: SmtpMailer
) -> None:
    await mailer.send(_mail("m1", to="ann@example.com", subject="Order SO-1 confirmed"))
    await mailer.send(_mail("m2", to="bob@example.com", subject="Order SO-2 confirmed"))
    await mailer.send(_mail("m3", to="ann@example.com", subject="Order SO-1 shipped"))

    everything = await _messages(http)
    assert [m["message_id"] for m in everything] == ["m1@orderflow", "m2@orderflow", "m3@orderflow"]
    to_ann = await _messages(http, to="ANN@example.com")
    assert [m["message_id"] for m in to_ann] == ["m1@orderflow", "m3@orderflow"]
    confirmed = await _messages(http, subject_contains="CONFIRMED")
    assert [m["message_id"] for m in confirmed] == ["m1@orderflow", "m2@orderflow"]
    both = await _messages(http, to="ann@example.com", subject_contains="shipped")
    assert [m["message_id"] for m in both] == ["m3@orderflow"]
    assert await _messages(http, to="nobody@example.com") == []


async def test_an_outage_is_a_retryable_failure(
    http: httpx.AsyncClient, mailer: SmtpMailer
) -> None:
    response = await http.post("/_admin/outage", json={"down": True})
    assert response.json() == {"down": True}
    with pytest.raises(MailUnavailable, match="421"):
        await mailer.send(_mail("during-outage"))
    assert await _messages(http) == []

    await http.post("/_admin/outage", json={"down": False})
    await mailer.send(_mail("during-outage"))
    assert [m["message_id"] for m in await _messages(http)] == ["during-outage@orderflow"]


async def test_a_rejected_recipient_is_a_permanent_failure(
    http: httpx.AsyncClient, mailer: SmtpMailer
) -> None:
    response = await http.post("/_admin/reject", json={"addresses": ["Gone@Example.com"]})
    assert response.json() == {"addresses": ["gone@example.com"]}
    with pytest.raises(MailRejected, match="550"):
        await mailer.send(_mail("to-gone", to="gone@example.com"))
    await mailer.send(_mail("to-here", to="here@example.com"))
    assert [m["to"] for m in await _messages(http)] == ["here@example.com"]

    await http.post("/_admin/reject", json={"addresses": []})
    await mailer.send(_mail("to-gone", to="gone@example.com"))
    assert len(await _messages(http, to="gone@example.com")) == 1


async def test_reset_forgets_messages_and_heals(
    http: httpx.AsyncClient, mailer: SmtpMailer, standin: SmtpStandin
) -> None:
    await mailer.send(_mail("before-reset"))
    await http.post("/_admin/outage", json={"down": True})
    await http.post("/_admin/reject", json={"addresses": ["x@example.com"]})
    assert (await http.post("/_admin/reset")).json() == {"reset": True}
    state = (await http.get("/_admin/state")).json()
    assert state == {
        "down": False,
        "reject_recipients": [],
        "messages": 0,
        "smtp": {"host": "127.0.0.1", "port": standin.port},
    }
    await mailer.send(_mail("after-reset", to="x@example.com"))
    assert [m["message_id"] for m in await _messages(http)] == ["after-reset@orderflow"]


async def test_messages_survive_a_restart(tmp_path: Path) -> None:
    state_path = tmp_path / "smtp.sqlite"
    with SmtpStandin(state_path, port=0) as first:
        await SmtpMailer("127.0.0.1", first.port, timeout=2.0).send(_mail("before-restart"))
        first.down = True
    with SmtpStandin(state_path, port=0) as second:
        # Faults live in memory only, so the new server takes mail at once.
        assert not second.down
        await SmtpMailer("127.0.0.1", second.port, timeout=2.0).send(_mail("after-restart"))
        kept = [m["message_id"] for m in second.store.messages()]
    assert kept == ["before-restart@orderflow", "after-restart@orderflow"]


async def test_an_unreachable_server_is_retryable(tmp_path: Path) -> None:
    server = SmtpStandin(None, port=0)
    server.start()
    port = server.port
    server.stop()
    with pytest.raises(MailUnavailable):
        await SmtpMailer("127.0.0.1", port, timeout=2.0).send(_mail("nobody-listens"))


async def test_a_silent_server_times_out_as_retryable() -> None:
    # Listening without ever accepting: the connection opens, but no greeting comes.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(MailUnavailable):
            await SmtpMailer("127.0.0.1", port, timeout=0.3).send(_mail("no-greeting"))
        assert time.monotonic() - started < 3


async def test_bad_addresses_and_ids_fail_before_sending(
    http: httpx.AsyncClient, mailer: SmtpMailer
) -> None:
    with pytest.raises(MailRejected):
        await mailer.send(_mail("bad-recipient", to="not an address"))
    with pytest.raises(ValueError, match="message id"):
        await mailer.send(_mail("order:1"))
    with pytest.raises(ValueError, match="cannot be overridden"):
        await mailer.send(
            OutgoingMail("dup-header", SENDER, "a@example.com", "s", "t", {"Message-ID": "<x@y>"})
        )
    assert await _messages(http) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_serve_runs_both_until_sigterm(tmp_path: Path) -> None:
    http_port = _free_port()
    script = (
        "import sys; from pathlib import Path; from providers.smtp_standin import serve; "
        "serve(Path(sys.argv[1]), '127.0.0.1', 0, '127.0.0.1', int(sys.argv[2]), 'warning')"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        str(tmp_path / "smtp.sqlite"),
        str(http_port),
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        base_url = f"http://127.0.0.1:{http_port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=2.0) as client:
            deadline = time.monotonic() + 15
            state: dict[str, Any] | None = None
            while state is None:
                assert process.returncode is None, "serve exited early"
                assert time.monotonic() < deadline, "serve did not start in time"
                try:
                    state = (await client.get("/_admin/state")).json()
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            smtp_port = state["smtp"]["port"]
            await SmtpMailer("127.0.0.1", smtp_port, timeout=2.0).send(_mail("via-serve"))
            response = await client.get("/messages", params={"to": "kunde@example.com"})
            assert [m["message_id"] for m in response.json()] == ["via-serve@orderflow"]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
