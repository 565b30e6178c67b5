"""The orderflow commands repeat what the API answered `try_again`, and nothing else."""

from __future__ import annotations

import argparse

import httpx
import pytest

from orderflow.api_client import api_http
from orderflow.settings import Settings


def _client(answers: list[httpx.Response], seen: list[str]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content.decode())
        return answers.pop(0)

    args = argparse.Namespace(api="http://api.invalid", key="k")
    return api_http(Settings(), args, transport=httpx.MockTransport(handler))


def _error(status: int, code: str) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": code, "message": ""}}, headers={"Retry-After": "0"}
    )


def test_try_again_is_repeated_with_the_same_body() -> None:
    seen: list[str] = []
    answers = [_error(503, "try_again"), _error(503, "try_again"), httpx.Response(200, json={})]
    with _client(answers, seen) as client:
        r = client.patch("/orders/SO-1", json={"note": "x"})
    assert r.status_code == 200
    assert seen == ['{"note":"x"}'] * 3


@pytest.mark.parametrize(
    "first", [_error(503, "temporal_unavailable"), _error(409, "closed"), _error(422, "invalid")]
)
def test_other_refusals_are_not_repeated(first: httpx.Response) -> None:
    seen: list[str] = []
    with _client([first, httpx.Response(200)], seen) as client:
        r = client.post("/orders", json={})
    assert r.status_code == first.status_code
    assert len(seen) == 1


def test_gives_up_after_its_attempts() -> None:
    seen: list[str] = []
    with _client([_error(503, "try_again") for _ in range(9)], seen) as client:
        r = client.post("/orders/SO-1/cancel", json={})
    assert r.status_code == 503 and len(seen) == 5
