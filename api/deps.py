"""Request dependencies: settings, a database session, the Temporal client, the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.unavailable import TEMPORAL, DependencyUnavailable
from orderflow.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_temporal(request: Request) -> Client:
    client: Client | None = request.app.state.temporal
    if client is None:
        # Only before the app's start-up has made its client.
        raise DependencyUnavailable(TEMPORAL, "the API has no Temporal client yet")
    return client


def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    return request.app.state.sessions


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_sessionmaker(request)() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
SessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]
