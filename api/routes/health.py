"""Liveness and readiness, without authentication (for supervisors and load balancers)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter

from api.dagster_gateway import GatewayError
from api.deps import ArtifactsDep, GatewayDep, SettingsDep
from api.problems import ApiProblem, problem_responses
from api.schemas import Check, Health, Readiness
from media_pipeline import db
from media_pipeline.resources import ArtifactStore

router = APIRouter(tags=["health"])


@router.get(
    "/healthz", response_model=Health, summary="Liveness: the process answers", responses=problem_responses(500)
)
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: database, artifact store and Dagster are reachable",
    responses=problem_responses(
        500, 503, descriptions={503: "Something is not ready (`not_ready`); `checks` says what."}
    ),
)
def readyz(settings: SettingsDep, artifacts: ArtifactsDep, gateway: GatewayDep) -> Readiness:
    checks = {
        "database": _database(settings.database_url),
        "artifact_store": _artifact_store(artifacts),
        "dagster": _dagster(gateway),
    }
    failing = [name for name, check in checks.items() if not check.ok]
    if failing:
        raise ApiProblem(
            503,
            "not_ready",
            "not ready: " + "; ".join(f"{name}: {checks[name].detail}" for name in failing),
            checks={name: check.model_dump() for name, check in checks.items()},
        )
    return Readiness(status="ok", checks=checks)


def _database(url: str) -> Check:
    try:
        db.migrate(url)
        with db.engine_for(url).connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as exc:
        return Check(ok=False, detail=f"the domain database is not reachable ({type(exc).__name__})")
    return Check(ok=True)


def _artifact_store(artifacts: ArtifactStore) -> Check:
    # The working folder, and with the s3 backend the bucket (reachable, existing, credentials).
    problem = artifacts.check()
    return Check(ok=problem is None, detail=problem)


def _dagster(gateway: GatewayDep) -> Check:
    try:
        gateway.ping()
    except GatewayError as exc:
        first_line = (str(exc).splitlines() or ["unreachable"])[0]
        return Check(ok=False, detail=first_line[:300])
    return Check(ok=True)
