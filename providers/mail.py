"""Sending email over SMTP, with failures sorted into retryable and permanent ones."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import NonASCIILocalPartDefect
from email.headerregistry import Address, AddressHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

MESSAGE_ID_DOMAIN = "orderflow"
# RFC 5322 dot-atom-text: anything else would be cut short or mangled by mail parsers, and
# then copies of one message could no longer be matched up by their Message-ID.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_HEADERS = HeaderRegistry()


class MailUnavailable(Exception):
    """The mail server could not take the message now; sending it again later may work."""


class MailRejected(Exception):
    """The mail server refused the recipient or the message for good; do not retry."""


@dataclass(frozen=True)
class OutgoingMail:
    """One plain-text email to one recipient."""

    message_id: str
    sender: str
    to: str
    subject: str
    text: str
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)


def message_id_header(message_id: str) -> str:
    """The Message-ID header value of a message whose outbox key is `message_id`."""
    if not _DOT_ATOM.fullmatch(message_id):
        raise ValueError(
            f"message id {message_id!r} may only hold letters, digits, dots and"
            " !#$%&'*+/=?^_`{|}~- (no spaces, ':', '@', '<' or '>')"
        )
    return f"<{message_id}@{MESSAGE_ID_DOMAIN}>"


def parse_mailbox(value: str) -> Address:
    """The single mailbox in `value` ("a@b.example" or "Name <a@b.example>"); ValueError if not."""
    try:
        header = _HEADERS("To", value)
    except (ValueError, IndexError) as exc:
        # The stdlib parser raises IndexError on some malformed input, such as "a@".
        raise ValueError(f"not an email address: {value!r}") from exc
    assert isinstance(header, AddressHeader)
    # A non-ASCII local part is fine: it goes out with SMTPUTF8.
    defects = [d for d in header.defects if not isinstance(d, NonASCIILocalPartDefect)]
    if len(header.addresses) != 1 or defects:
        raise ValueError(f"not exactly one email address: {value!r}")
    address = header.addresses[0]
    if not address.username or not address.domain:
        raise ValueError(f"not an email address: {value!r}")
    return address


def build_message(mail: OutgoingMail, now: datetime | None = None) -> EmailMessage:
    """The RFC 5322 message for `mail`; ValueError if a field cannot be put in a header."""
    message = EmailMessage()
    message["Message-ID"] = message_id_header(mail.message_id)
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["From"] = mail.sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message.set_content(mail.text)
    for name, value in mail.headers.items():
        if name in message:
            raise ValueError(f"header {name!r} is set by the mailer and cannot be overridden")
        message[name] = value
    return message


def _refused(codes: list[int], detail: str) -> Exception:
    if codes and all(code >= 500 for code in codes):
        return MailRejected(detail)
    return MailUnavailable(detail)


class SmtpMailer:
    """Sends each message over a fresh SMTP connection to `host:port`."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._local_hostname: str | None = None

    async def _ehlo_name(self) -> str:
        # The lookup can take seconds on a host without DNS, and its answer does not change.
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname

    async def send(self, mail: OutgoingMail) -> None:
        """Hand `mail` to the SMTP server; raises MailUnavailable or MailRejected on failure."""
        try:
            recipient = parse_mailbox(mail.to).addr_spec
        except ValueError as exc:
            raise MailRejected(str(exc)) from exc
        sender = parse_mailbox(mail.sender).addr_spec
        message = build_message(mail)
        try:
            await aiosmtplib.send(
                message,
                sender=sender,
                recipients=[recipient],
                hostname=self.host,
                port=self.port,
                timeout=self.timeout,
                local_hostname=await self._ehlo_name(),
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            raise _refused([r.code for r in exc.recipients], detail) from exc
        except (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError) as exc:
            # Refused at RCPT or after the content: about this message, not the server.
            raise _refused([exc.code], f"{exc.code} {exc.message}") from exc
        except aiosmtplib.SMTPNotSupported as exc:
            # A non-ASCII address that this server cannot carry; retrying will not help.
            raise MailRejected(str(exc)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            # Greeting, HELO or MAIL FROM refused: the server or our account, not the recipient.
            raise MailUnavailable(f"{exc.code} {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Connection refused or lost, timeouts, TLS failures.
            raise MailUnavailable(f"{type(exc).__name__}: {exc}") from exc
