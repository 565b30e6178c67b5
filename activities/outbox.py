"""The outbox dispatcher: sends the emails that order steps wrote, each once."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import orders_repo
from models.notifications import STAFF
from models.tables import OutboxMessage
from providers.mail import MailRejected, MailUnavailable, OutgoingMail, SmtpMailer

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 20


def message_id(key: str) -> str:
    """The Message-ID of an outbox key: the same key always gives the same id, so a
    receiver (and our tests) can tell a duplicate from a second email."""
    return key.replace(":", ".")


class OutboxDispatcher:
    """Polls the outbox and sends pending emails through SMTP.

    Each email is locked, sent and marked sent in a transaction of its own, committed as soon
    as the server took it: a crash can only resend the one email that was in flight (with the
    same Message-ID). One transaction for a whole batch would resend every email of the batch
    that had gone out before the crash.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        mailer: SmtpMailer,
        sender: str,
        staff: str,
        poll_seconds: float = 0.5,
        batch: int = 50,
    ) -> None:
        self.sessions = sessions
        self.mailer = mailer
        self.sender = sender
        self.staff = staff
        self.poll_seconds = poll_seconds
        self.batch = batch

    async def run(self, stop: asyncio.Event) -> None:
        """Send until told to stop."""
        while not stop.is_set():
            try:
                sent = await self.send_pending()
            except Exception:
                log.exception("outbox dispatch failed; retrying")
                sent = 0
            if sent < self.batch:
                try:
                    await asyncio.wait_for(stop.wait(), self.poll_seconds)
                except TimeoutError:
                    pass

    async def send_pending(self) -> int:
        """Send up to one batch of pending emails; returns how many went out."""
        sent = 0
        for _ in range(self.batch):
            async with self.sessions.begin() as session:
                claimed = await orders_repo.claim_pending_mail(session, 1)
                if not claimed:
                    break
                row = claimed[0]
                try:
                    await self._send(row)
                except MailUnavailable as exc:
                    # The server is away: keep the rest for the next round.
                    row.last_error = str(exc)[:500]
                    if row.attempts >= MAX_ATTEMPTS:
                        row.status = "failed"
                    break
                except (MailRejected, ValueError) as exc:
                    row.status = "failed"
                    row.last_error = str(exc)[:500]
                    continue
            sent += 1
        return sent

    async def _send(self, row: OutboxMessage) -> None:
        to = self.staff if row.recipient == STAFF else row.recipient
        row.attempts += 1
        await self.mailer.send(
            OutgoingMail(
                message_id=message_id(row.key),
                sender=self.sender,
                to=to,
                subject=row.subject,
                text=row.body,
                headers={"X-Orderflow-Order": row.order_id, "X-Orderflow-Kind": row.kind},
            )
        )
        row.status = "sent"
        row.sent_at = datetime.now(UTC)
