"""The plumbing every third-party JSON API client shares: idempotency keys, timeouts, and
answers mapped to exceptions by whether a retry can help."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

_M = TypeVar("_M", bound=BaseModel)


def error_of(response: httpx.Response) -> tuple[str, str]:
    """The party's (code, message), tolerating bodies that are not its error format."""
    try:
        payload = response.json()
    except ValueError:
        return f"http_{response.status_code}", response.text[:200]
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            return str(error.get("code", f"http_{response.status_code}")), str(
                error.get("message", "")
            )
        if "detail" in payload:
            return f"http_{response.status_code}", str(payload["detail"])[:200]
    return f"http_{response.status_code}", str(payload)[:200]


class JsonHttpClient:
    """Base of the carrier and gateway clients.

    Subclasses name the party and their exceptions: `unavailable` (an outage: retried) and
    `rejected` (a business refusal: not retried); `_refusal` may map a status of their own.
    """

    party = "the service"
    unavailable: type[Exception] = RuntimeError
    rejected: Any = RuntimeError

    def __init__(
        self, base_url: str, client: httpx.AsyncClient | None = None, timeout: float = 5.0
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=timeout)
        self._timeout = timeout

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _refusal(self, response: httpx.Response) -> Exception | None:
        """A party-specific exception for this answer, if it has one."""
        return None

    async def _call(
        self,
        method: str,
        path: str,
        model: type[_M],
        *,
        body: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> _M:
        headers = {"Idempotency-Key": key} if key is not None else {}
        try:
            response = await self._client.request(
                method, self._base_url + path, json=body, headers=headers, timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            raise self.unavailable(f"timeout calling {method} {path}") from exc
        except httpx.TransportError as exc:
            raise self.unavailable(f"cannot reach {self.party}: {exc!r}") from exc
        status = response.status_code
        # 429 means "later", so it is retried like an outage.
        if status >= 500 or status == 429:
            code, message = error_of(response)
            raise self.unavailable(f"{self.party} answered {status}: {code} {message}".strip())
        special = self._refusal(response)
        if special is not None:
            raise special
        if status >= 400:
            code, message = error_of(response)
            raise self.rejected(code, message, status_code=status)
        try:
            return model.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            # A garbled success is retried: the idempotency key makes the retry harmless.
            raise self.unavailable(f"unreadable answer of {self.party} to {method} {path}") from exc
