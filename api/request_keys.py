"""What an Idempotency-Key is bound to: which requests take one, a request's fingerprint, the
id handed on to Temporal, and which answers are kept for a retry (no I/O here)."""

from __future__ import annotations

import hashlib
import re

HEADER = "Idempotency-Key"
CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 200
KEY_FORMAT = re.compile(f"[!-~]{{1,{MAX_KEY_LENGTH}}}")
# Placing an order keeps its keys with the order's intake (api/intake.py). These match a
# request's path and a path template of the OpenAPI document alike.
PLACES_ORDER = re.compile(r"/orders(/[^/]+/reorder)?")
# Signed webhooks de-duplicate by their signature and event ids.
WEBHOOKS = re.compile(r"/webhooks/.*")
# Answers a retry may be told again. Not 5xx (nothing is promised), nor 401/403 (about the
# caller, not the request), nor 400 (the body could not even be read).
KEPT = frozenset({404, 409, 412, 422})
# Short keys of these characters appear as they are in update ids; others as their hash.
READABLE_KEY = re.compile(r"[A-Za-z0-9._-]{1,40}")


def places_order(method: str, path: str) -> bool:
    return method == "POST" and PLACES_ORDER.fullmatch(path) is not None


def takes_keys(method: str, path: str) -> bool:
    """Whether a request to `path` has its Idempotency-Key handled by api/idempotency.py."""
    return method in CHANGING and not places_order(method, path) and not WEBHOOKS.fullmatch(path)


def request_hash(method: str, target: str, body: bytes) -> str:
    """A request's fingerprint: its method, path with query, and body bytes."""
    digest = hashlib.sha256()
    for part in (method.encode(), target.encode("latin-1"), body):
        # Each part with its length, so that no two requests run together the same way.
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def make_request_key(principal: str, key: str, fingerprint: str) -> str:
    """The id under which a request's effects are de-duplicated downstream (a Temporal update
    id): short and plain, the caller's, and with the request's fingerprint, so that a key used
    again after it expired does not meet the update made under it before."""
    if READABLE_KEY.fullmatch(key):
        shown = key
    else:
        shown = "#" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"idem:{principal}:{shown}:{fingerprint[:12]}"


def kept(status: int) -> bool:
    """Whether an answer with this status is stored for replay."""
    return 200 <= status < 300 or status in KEPT
