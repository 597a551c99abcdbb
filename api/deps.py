"""Request dependencies: settings, database session, Dagster gateway, authentication."""

from __future__ import annotations

import hmac
import threading
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.datastructures import Headers

from api.dagster_gateway import DagsterGateway
from api.problems import ApiProblem
from media_pipeline import db
from media_pipeline.resources import ArtifactStore
from media_pipeline.settings import Settings

# The dependencies that only read the app's state are `async def`: FastAPI runs a plain `def`
# dependency on a worker thread, and those hops (several per request) cost a cached edit more
# than its work does on a busy machine.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_artifacts(request: Request) -> ArtifactStore:
    artifacts: ArtifactStore = request.app.state.artifacts
    return artifacts


ArtifactsDep = Annotated[ArtifactStore, Depends(get_artifacts)]


_migrate_lock = threading.Lock()


def _migrate(url: str) -> None:
    # The first requests arrive on several threads at once; one migrates, the others wait
    # (Postgres has its own lock for other processes, SQLite does not).
    with _migrate_lock:
        db.migrate(url)


async def get_session(settings: SettingsDep) -> AsyncIterator[Session]:
    # Opening a session does no I/O (it connects on first use), so only the migration and a close
    # that must roll back go to a worker thread, not every request's session twice.
    if not db.is_migrated(settings.database_url):
        await run_in_threadpool(_migrate, settings.database_url)
    session = db.session_factory(settings.database_url)()
    try:
        yield session
    finally:
        # Whatever a route did not commit is rolled back here.
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


SessionDep = Annotated[Session, Depends(get_session)]


async def get_gateway(request: Request) -> DagsterGateway:
    gateway: DagsterGateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[DagsterGateway, Depends(get_gateway)]


# -- authentication ---------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <MEDIA_PIPELINE_API_TOKEN>`")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: <MEDIA_PIPELINE_API_TOKEN>`")


def token_matches(presented: str | None, token: str) -> bool:
    # An unset token never matches (not even an empty credential). Bytes, because
    # compare_digest refuses non-ASCII str, and header values can be any Latin-1.
    if not token or not presented:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), token.encode("utf-8"))


def credentials_in(headers: Headers) -> list[str]:
    presented = []
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        presented.append(value.strip())
    if key := headers.get("x-api-key"):
        presented.append(key)
    return presented


def authenticated(headers: Headers, token: str) -> bool:
    # Every presented credential is compared, so timing does not tell which header was right.
    results = [token_matches(candidate, token) for candidate in credentials_in(headers)]
    return any(results)


def unauthorized() -> ApiProblem:
    return ApiProblem(
        401,
        "unauthorized",
        "this route needs the API token: send `Authorization: Bearer <token>` or `X-API-Key: <token>`",
        headers={"WWW-Authenticate": 'Bearer realm="media_pipeline"'},
    )


async def require_token(
    request: Request,
    settings: SettingsDep,
    _bearer_credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    _api_key_value: Annotated[str | None, Security(_api_key)],
) -> None:
    """Checks the token again (the guard middleware already did, before any body was read) and
    declares both schemes in the OpenAPI document."""
    if not authenticated(request.headers, settings.api_token):
        raise unauthorized()
