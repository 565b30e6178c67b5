"""Conditional requests on an order: its version is the ETag, If-Match guards every edit."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Response

from api.errors import ApiError
from models.order import OrderView

_TAG = re.compile(r'^(W/)?"(\d{1,12})"$')


def etag(view: OrderView) -> str:
    """The ETag of an order as it stands: its version, which every change moves on."""
    return f'"{view.version}"'


def parse_if_match(value: str | None) -> int | None:
    """The version an If-Match header names; None when it names none (absent or `*`)."""
    if value is None or value.strip() == "*":
        return None
    match = _TAG.match(value.strip())
    if match is None:
        raise ApiError(
            422,
            "invalid_if_match",
            'If-Match takes one ETag as GET /orders/{id} gives it, e.g. "7", or *',
        )
    return int(match.group(2))


class Precondition:
    """The version an edit was made against, and the ETag of the order it answers with."""

    def __init__(
        self,
        response: Response,
        if_match: Annotated[str | None, Header(alias="If-Match", max_length=100)] = None,
    ) -> None:
        self.response = response
        self.expected = parse_if_match(if_match)

    def answer(self, view: OrderView) -> OrderView:
        """The view, with its ETag set on the response."""
        self.response.headers["ETag"] = etag(view)
        return view


PreconditionDep = Annotated[Precondition, Depends()]
