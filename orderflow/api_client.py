"""How the `orderflow` commands reach the API: its address and the key they call with."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import httpx

from orderflow.settings import Settings

DEV_KEYS = "dev-api-keys.json"


def dev_keys_path(settings: Settings) -> Path:
    """Where the dev stack keeps the keys it prints (readable by this user only)."""
    return settings.data_dir / DEV_KEYS


def read_dev_keys(settings: Settings) -> dict[str, str]:
    try:
        keys = json.loads(dev_keys_path(settings).read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in keys.items() if isinstance(v, str)}


def add_api_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", help="the API's address (default: this machine's dev stack)")
    parser.add_argument(
        "--key", help="the API key (default: ORDERFLOW_API_KEY, else the dev stack's staff key)"
    )


def api_base(settings: Settings, args: argparse.Namespace) -> str:
    return str(args.api or f"http://{settings.api_host}:{settings.api_port}")


def api_key(settings: Settings, args: argparse.Namespace) -> str:
    return str(args.key or settings.api_key or read_dev_keys(settings).get("staff", ""))


def auth_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


class TryAgainTransport(httpx.BaseTransport):
    """Repeats a request the API answered 503 `try_again`: it promises nothing changed."""

    def __init__(self, inner: httpx.BaseTransport, attempts: int = 5, cap: float = 5.0) -> None:
        self.inner = inner
        self.attempts = attempts
        self.cap = cap

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for _ in range(self.attempts - 1):
            response = self.inner.handle_request(request)
            if response.status_code != 503 or _code(response) != "try_again":
                return response
            response.close()
            time.sleep(_retry_after(response, self.cap))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def _code(response: httpx.Response) -> str:
    response.read()
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


def _retry_after(response: httpx.Response, cap: float) -> float:
    try:
        return min(cap, max(0.1, float(response.headers.get("Retry-After", "1"))))
    except ValueError:
        return 1.0


def api_http(
    settings: Settings,
    args: argparse.Namespace,
    timeout: float = 60,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """An HTTP client for the API, sending the caller's key and repeating `try_again`s."""
    return httpx.Client(
        base_url=api_base(settings, args),
        timeout=timeout,
        headers=auth_headers(api_key(settings, args)),
        transport=TryAgainTransport(transport or httpx.HTTPTransport()),
    )
