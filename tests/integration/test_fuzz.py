"""Property-based fuzzing of every operation against the API's own OpenAPI document (§10: bad
input gets a 4xx, never a 500, and every answer is one the document promises).

The app runs in-process on its own database (fuzzed writes must not reach other tests' rows)
and the session's Temporal server. `ORDERFLOW_FUZZ_EXAMPLES` raises the examples per operation
for a longer run; the default keeps the file near two minutes on two cores.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from sqlalchemy.engine import make_url

from api.app import create_app
from models.api_keys import Role, create_key
from orderflow.db import make_engine, make_sessions
from orderflow.migrate import upgrade
from orderflow.seed import seed
from orderflow.settings import Settings

EXAMPLES = int(os.environ.get("ORDERFLOW_FUZZ_EXAMPLES", "30"))
# A seeded customer, so a customer key's own routes get past the ownership checks.
CUSTOMER = "C-1001"
# The routers a customer key may reach at all; everything else is 403 for it.
CUSTOMER_TAGS = ["orders", "customers", "documents"]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # Slow data generation for the large order bodies is expected, not a problem of the API.
    suppress_health_check=list(HealthCheck),
)
# Answers per operation and status, printed at the end of the module (`pytest -s` shows them).
SEEN: Counter[tuple[str, int]] = Counter()


@pytest.fixture(scope="module")
def fuzz_database(database_url: str) -> Iterator[str]:
    """A database of its own on the session's PostgreSQL, migrated and seeded."""
    url = make_url(database_url)
    name = f"fuzz_{uuid.uuid4().hex[:8]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    fuzz_url = url.set(database=name).render_as_string(hide_password=False)
    upgrade(fuzz_url)
    seed(fuzz_url)
    yield fuzz_url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'drop database "{name}" with (force)')


@pytest.fixture(scope="module")
async def fuzz_keys(fuzz_database: str) -> AsyncIterator[dict[Role, str]]:
    engine = make_engine(fuzz_database)
    try:
        async with make_sessions(engine).begin() as s:
            keys = {
                Role.STAFF: (await create_key(s, "fuzz-staff", Role.STAFF))[1],
                Role.ADMIN: (await create_key(s, "fuzz-admin", Role.ADMIN))[1],
                Role.CUSTOMER: (await create_key(s, "fuzz-customer", Role.CUSTOMER, CUSTOMER))[1],
            }
    finally:
        await engine.dispose()
    yield keys


class DeferredApp:
    """The ASGI app the cases are sent to: the document is read at import, when the session's
    database and Temporal server are not known yet; `fuzz_app` builds the app behind it."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


TARGET = DeferredApp()
schema = schemathesis.openapi.from_dict(
    create_app(Settings()).openapi(),
    config=schemathesis.Config.from_dict(
        {
            "base-url": "http://testserver",
            "checks": {
                # Schema-valid input may still name a SKU, warehouse, supplier, promotion or
                # country this installation does not have; the API refuses those with 422
                # (§11: a fitting 4xx), which no document can list in advance. And a cursor is
                # opaque: any string is well formed, only one the server issued means something
                # (400).
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "422"]
                },
                # The body size limit refuses an oversize body (413) before it is parsed.
                "negative_data_rejection": {
                    "expected-statuses": [
                        *("400", "401", "403", "404", "405", "406", "409", "413"),
                        *("415", "422", "428", "429"),
                    ]
                },
            },
            "operations": [
                {
                    # The import file is raw text: a "wrong type" body (an object) reaches the
                    # API as the text `{}`, a string like any file, so it cannot be told from
                    # a file of bad rows, which the import answers row by row with a 200.
                    "include-path": "/imports",
                    "checks": {"negative_data_rejection": {"enabled": False}},
                }
            ],
        }
    ),
)
schema.app = TARGET


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_: schemathesis.SerializationContext, value: Any) -> bytes:
    # An import file is text; whatever else the fuzzer makes is sent as its JSON text.
    return (value if isinstance(value, str) else json.dumps(value)).encode()


@pytest.fixture(scope="module", autouse=True)
def fuzz_app(base_settings: Settings, fuzz_database: str) -> Iterator[None]:
    # No client or sessions are handed in: schemathesis drives the app on an event loop of its
    # own, so the app's lifespan connects to PostgreSQL and Temporal on that loop.
    TARGET.app = create_app(
        base_settings.model_copy(
            update={"database_url": fuzz_database, "task_queue": f"fuzz-{uuid.uuid4().hex[:8]}"}
        )
    )
    yield
    print("\nfuzz answers (operation: status x count)")
    for label in sorted({label for label, _ in SEEN}):
        counts = ", ".join(f"{st} x{n}" for (lb, st), n in sorted(SEEN.items()) if lb == label)
        print(f"  {label}: {counts}")
    print(f"  {sum(SEEN.values())} requests to {len({label for label, _ in SEEN})} operations")


def _call(case: schemathesis.Case, key: str) -> None:
    response = case.call_and_validate(headers={"Authorization": f"Bearer {key}"})
    SEEN[(case.operation.label, response.status_code)] += 1


@schema.parametrize()
@FUZZ_SETTINGS
def test_staff_fuzz(case: schemathesis.Case, fuzz_keys: dict[Role, str]) -> None:
    """Every operation, with a staff key (an admin key for /admin)."""
    role = Role.ADMIN if case.operation.path.startswith("/admin/") else Role.STAFF
    _call(case, fuzz_keys[role])


# Excluding, not including: includes add up with the per-operation settings above.
@schema.exclude(tag_regex=f"^(?!({'|'.join(CUSTOMER_TAGS)})$)").parametrize()
@FUZZ_SETTINGS
def test_customer_fuzz(case: schemathesis.Case, fuzz_keys: dict[Role, str]) -> None:
    """The operations a customer key may reach, with one."""
    _call(case, fuzz_keys[Role.CUSTOMER])
