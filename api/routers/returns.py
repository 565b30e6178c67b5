"""Returns: read one, decide on it, record what came back (§5)."""

from __future__ import annotations

from fastapi import APIRouter

from api import order_calls
from api.auth import ActorDep
from api.deps import SessionDep, TemporalDep
from api.errors import ApiError, error_responses
from api.idempotency import request_key
from api.schemas import ReturnDecisionBody, ReturnReceiptBody
from models import returns_repo
from models.returns import ReturnView
from workflows import contract as c

router = APIRouter(tags=["returns"])
DONE = {"REJECTED", "REFUNDED", "EXCHANGED", "REFUND_DUE"}


async def _known(session: SessionDep, client: TemporalDep, return_id: str) -> ReturnView:
    """The return as recorded, or, just after the order accepted it and before its workflow's
    first write, as its workflow answers; 404 when there is no such return."""
    stored = await returns_repo.load_return(session, return_id)
    if stored is None:
        stored = await order_calls.query_return(client, return_id)
    if stored is None:
        raise ApiError(404, "return_not_found", f"no return {return_id}")
    return stored


@router.get("/returns/{return_id}", response_model=ReturnView)
async def get_return(return_id: str, session: SessionDep, client: TemporalDep) -> ReturnView:
    """The return from its workflow while it runs, from PostgreSQL once it ended.

    An exchange shows, in `exchange`, the credit of the lines sent back, the value of the goods
    wanted, the difference and how it will be settled, from the moment it is asked for."""
    stored = await _known(session, client, return_id)
    if stored.status in DONE:
        return stored
    await session.close()
    return await order_calls.query_return(client, return_id) or stored


@router.post(
    "/returns/{return_id}/decision", response_model=ReturnView, responses=error_responses(409)
)
async def decide_return(
    return_id: str,
    body: ReturnDecisionBody,
    session: SessionDep,
    client: TemporalDep,
    actor: ActorDep,
) -> ReturnView:
    """Staff approve or reject a return; the answer shows what they decided on (for an
    exchange its two values and their difference, as `GET /returns/{id}` did before)."""
    await _known(session, client, return_id)
    req = c.ReturnDecision(decision=body.decision, note=body.note, actor=actor)
    return await order_calls.run_update(
        client, return_id, c.UPDATE_RETURN_DECISION, req, ReturnView, update_id=request_key()
    )


@router.post(
    "/returns/{return_id}/receipt", response_model=ReturnView, responses=error_responses(409)
)
async def receive_return(
    return_id: str,
    body: ReturnReceiptBody,
    session: SessionDep,
    client: TemporalDep,
    actor: ActorDep,
) -> ReturnView:
    """The warehouse records what came back: sellable goods are restocked."""
    await _known(session, client, return_id)
    req = c.ReturnReceipt(condition=body.condition, note=body.note, actor=actor)
    return await order_calls.run_update(
        client, return_id, c.UPDATE_RETURN_RECEIPT, req, ReturnView, update_id=request_key()
    )
