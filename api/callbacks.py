"""`callback_url` on job requests: checked when the job is requested, its deliveries shown on the job."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.problems import field_problem
from api.schemas import WebhookDelivery
from media_pipeline.db.models import Job
from media_pipeline.db.models import WebhookDelivery as DeliveryRow
from media_pipeline.platform.webhooks import url_problem
from media_pipeline.settings import Settings


def accepted(settings: Settings, url: str | None, *, location: str = "body") -> str | None:
    """The callback URL to store, or a 422 naming `callback_url` and what to change."""
    if url is None:
        return None
    if not settings.webhook_secret:
        raise field_problem(
            "callback_url",
            "this server has no webhook secret to sign deliveries with (MEDIA_PIPELINE_WEBHOOK_SECRET); "
            "ask its operator to set one, or leave callback_url out and follow the job instead",
            location=location,
        )
    problem = url_problem(url, allow_private=settings.webhook_allow_private)
    if problem is not None:
        raise field_problem("callback_url", problem, location=location)
    return url


def deliveries(session: Session, job: Job) -> list[WebhookDelivery]:
    if job.callback_url is None:
        return []
    rows = session.scalars(sa.select(DeliveryRow).where(DeliveryRow.job_id == job.id).order_by(DeliveryRow.attempt))
    return [
        WebhookDelivery(attempt=row.attempt, ts=row.ts, status_code=row.status_code, error=row.error) for row in rows
    ]
