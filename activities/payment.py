"""Payment activities: authorize, capture and void at the gateway, and record each in PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from providers.payment import HttpPaymentGateway, PaymentDeclined, PaymentRejected

DECLINED = "PaymentDeclined"
REJECTED = "PaymentRejected"


class AuthorizeInput(BaseModel):
    order_id: str
    idempotency_key: str
    amount: Decimal
    currency: str
    token: str


class AuthorizeResult(BaseModel):
    authorization_id: str
    amount: Decimal
    currency: str


class CaptureInput(BaseModel):
    order_id: str
    idempotency_key: str
    authorization_id: str
    amount: Decimal


class RefundInput(BaseModel):
    order_id: str
    idempotency_key: str
    authorization_id: str
    amount: Decimal


class VoidInput(BaseModel):
    order_id: str
    idempotency_key: str
    authorization_id: str


def _business_error(exc: PaymentDeclined | PaymentRejected, kind: str) -> ApplicationError:
    # Non-retryable: a decline is an answer, not an outage; retrying would not change it.
    return ApplicationError(exc.reason, type=kind, non_retryable=True)


class PaymentActivities:
    """Gateway calls; every one carries the idempotency key the workflow made."""

    def __init__(self, gateway: HttpPaymentGateway) -> None:
        self.gateway = gateway

    @activity.defn(name="payment.authorize")
    async def authorize(self, inp: AuthorizeInput) -> AuthorizeResult:
        """Authorize the amount; a decline raises a non-retryable PaymentDeclined."""
        try:
            auth = await self.gateway.authorize(
                idempotency_key=inp.idempotency_key,
                order_id=inp.order_id,
                amount=inp.amount,
                currency=inp.currency,
                token=inp.token,
            )
        except PaymentDeclined as exc:
            raise _business_error(exc, DECLINED) from exc
        except PaymentRejected as exc:
            raise _business_error(exc, REJECTED) from exc
        return AuthorizeResult(authorization_id=auth.id, amount=auth.amount, currency=inp.currency)

    @activity.defn(name="payment.capture")
    async def capture(self, inp: CaptureInput) -> str:
        """Capture the amount of an authorization, once, whatever the retries."""
        try:
            cap = await self.gateway.capture(
                idempotency_key=inp.idempotency_key,
                authorization_id=inp.authorization_id,
                amount=inp.amount,
            )
        except PaymentRejected as exc:
            raise _business_error(exc, REJECTED) from exc
        return cap.id

    @activity.defn(name="payment.void")
    async def void(self, inp: VoidInput) -> None:
        """Release an authorization so the customer is not charged."""
        try:
            await self.gateway.void(
                idempotency_key=inp.idempotency_key, authorization_id=inp.authorization_id
            )
        except PaymentRejected as exc:
            raise _business_error(exc, REJECTED) from exc

    @activity.defn(name="payment.refund")
    async def refund(self, inp: RefundInput) -> str:
        """Give back (part of) a captured amount, once, whatever the retries."""
        try:
            refund = await self.gateway.refund(
                idempotency_key=inp.idempotency_key,
                authorization_id=inp.authorization_id,
                amount=inp.amount,
            )
        except PaymentRejected as exc:
            raise _business_error(exc, REJECTED) from exc
        return refund.id
