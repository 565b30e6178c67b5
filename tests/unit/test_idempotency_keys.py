"""The pure parts of Idempotency-Key: fingerprints, update ids, what is kept, sealed answers."""

from __future__ import annotations

import re

import pytest

from api.request_keys import (
    KEY_FORMAT,
    kept,
    make_request_key,
    places_order,
    request_hash,
    takes_keys,
)
from api.sealing import Unreadable, seal, unseal

PRINCIPAL = "0a1b2c3d4e5f"


def test_the_fingerprint_tells_method_path_and_body_apart() -> None:
    base = request_hash("PATCH", "/orders/SO-1", b'{"a":1}')
    assert base == request_hash("PATCH", "/orders/SO-1", b'{"a":1}')
    others = {
        request_hash("POST", "/orders/SO-1", b'{"a":1}'),
        request_hash("PATCH", "/orders/SO-2", b'{"a":1}'),
        request_hash("PATCH", "/orders/SO-1", b'{"a":2}'),
        request_hash("PATCH", "/orders/SO-1?x=1", b'{"a":1}'),
        # Where the path ends and the body begins is part of it.
        request_hash("PATCH", "/orders/SO-1{", b'"a":1}'),
    }
    assert base not in others and len(others) == 5


def test_update_ids_are_short_valid_and_per_caller() -> None:
    fp = request_hash("PATCH", "/orders/SO-1", b"{}")
    short = make_request_key(PRINCIPAL, "retry-7", fp)
    assert short == f"idem:{PRINCIPAL}:retry-7:{fp[:12]}"
    assert short != make_request_key("ffffffffffff", "retry-7", fp)
    assert short != make_request_key(PRINCIPAL, "retry-7", request_hash("PATCH", "/x", b"{}"))
    for odd in ("x" * 200, "a:b", "#abc", "käse"):
        made = make_request_key(PRINCIPAL, odd, fp)
        assert len(made) <= 80 and re.fullmatch(r"idem:[0-9a-f]+:#[0-9a-f]{32}:[0-9a-f]{12}", made)
    assert make_request_key(PRINCIPAL, "a:b", fp) != make_request_key(PRINCIPAL, "a:c", fp)


@pytest.mark.parametrize("status", [200, 201, 404, 409, 412, 422])
def test_answers_a_retry_may_be_told_again_are_kept(status: int) -> None:
    assert kept(status)


@pytest.mark.parametrize("status", [400, 401, 403, 500, 503])
def test_answers_that_promise_nothing_are_not_kept(status: int) -> None:
    assert not kept(status)


def test_which_requests_take_keys_here() -> None:
    assert takes_keys("PATCH", "/orders/SO-1")
    assert takes_keys("DELETE", "/admin/api-keys/abc")
    assert takes_keys("POST", "/orders/{order_id}/cancel")
    assert not takes_keys("GET", "/orders/SO-1")
    assert not takes_keys("POST", "/webhooks/carrier")
    # Placing an order keeps its keys with the order's intake.
    assert places_order("POST", "/orders") and places_order("POST", "/orders/SO-1/reorder")
    assert places_order("POST", "/orders/{order_id}/reorder")
    assert not takes_keys("POST", "/orders") and not takes_keys("POST", "/orders/SO-1/reorder")
    assert not places_order("POST", "/orders/SO-1/returns")


def test_key_format() -> None:
    assert KEY_FORMAT.fullmatch("4f1c-retry_2:x")
    for bad in ("", "a b", "x" * 201, "é", "tab\there"):
        assert not KEY_FORMAT.fullmatch(bad)


def test_a_sealed_answer_opens_with_its_own_key_only() -> None:
    plain = b'{"key": "ofk_abc_secret"}'
    sealed = seal("ofk_1_one", plain)
    assert b"secret" not in sealed
    assert unseal("ofk_1_one", sealed) == plain
    assert seal("ofk_1_one", plain) != sealed  # a fresh nonce each time
    with pytest.raises(Unreadable):
        unseal("ofk_2_two", sealed)
    tampered = sealed[:20] + bytes([sealed[20] ^ 1]) + sealed[21:]
    with pytest.raises(Unreadable):
        unseal("ofk_1_one", tampered)
    assert unseal("k", seal("k", b"")) == b""
