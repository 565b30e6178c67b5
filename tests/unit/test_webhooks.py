"""Webhook signing and verification."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from providers.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookSignatureError,
    sign,
    verify,
)

SECRET = "whsec_test"
BODY = b'{"event_id":"evt_1","type":"PICKED_UP"}'
NOW = 1_700_000_000


def test_sign_produces_both_headers_with_hmac_of_timestamp_and_body() -> None:
    headers = sign(SECRET, BODY, NOW)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert headers == {TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: f"v1={expected}"}


def test_verify_accepts_a_fresh_signature() -> None:
    verify(SECRET, sign(SECRET, BODY, NOW), BODY, now=NOW + 10, tolerance_seconds=300)


def test_header_lookup_is_case_insensitive() -> None:
    headers = {name.lower(): value for name, value in sign(SECRET, BODY, NOW).items()}
    verify(SECRET, headers, BODY, now=NOW, tolerance_seconds=300)


def test_tampered_body_is_refused() -> None:
    headers = sign(SECRET, BODY, NOW)
    with pytest.raises(WebhookSignatureError, match="mismatch"):
        verify(SECRET, headers, BODY.replace(b"PICKED_UP", b"DELIVERED"), NOW, 300)


def test_wrong_secret_is_refused() -> None:
    headers = sign("another-secret", BODY, NOW)
    with pytest.raises(WebhookSignatureError, match="mismatch"):
        verify(SECRET, headers, BODY, NOW, 300)


def test_changed_timestamp_is_refused() -> None:
    headers = sign(SECRET, BODY, NOW)
    headers[TIMESTAMP_HEADER] = str(NOW + 1)
    with pytest.raises(WebhookSignatureError, match="mismatch"):
        verify(SECRET, headers, BODY, NOW, 300)


@pytest.mark.parametrize("age", [301, -301, 10_000])
def test_timestamp_outside_tolerance_is_refused(age: int) -> None:
    headers = sign(SECRET, BODY, NOW)
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        verify(SECRET, headers, BODY, now=NOW + age, tolerance_seconds=300)


@pytest.mark.parametrize("missing", [TIMESTAMP_HEADER, SIGNATURE_HEADER])
def test_missing_header_is_refused(missing: str) -> None:
    headers = sign(SECRET, BODY, NOW)
    del headers[missing]
    with pytest.raises(WebhookSignatureError, match="missing"):
        verify(SECRET, headers, BODY, NOW, 300)


@pytest.mark.parametrize(
    ("timestamp", "signature", "reason"),
    [
        ("yesterday", "v1=00", "malformed timestamp"),
        (str(NOW), "sha256=abc", "no v1 signature"),
        (str(NOW), "v1=zz\u00e9", "mismatch"),
    ],
)
def test_malformed_headers_are_refused(timestamp: str, signature: str, reason: str) -> None:
    headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature}
    with pytest.raises(WebhookSignatureError, match=reason):
        verify(SECRET, headers, BODY, NOW, 300)


def test_any_of_several_signatures_may_match_during_secret_rotation() -> None:
    new = sign(SECRET, BODY, NOW)[SIGNATURE_HEADER]
    old = sign("old-secret", BODY, NOW)[SIGNATURE_HEADER]
    headers = {TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: f"{old}, {new}"}
    verify(SECRET, headers, BODY, NOW, 300)


def test_empty_secret_is_a_setup_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        sign("", BODY, NOW)
