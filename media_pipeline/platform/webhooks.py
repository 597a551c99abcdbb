"""Webhooks: a finished job is POSTed to the `callback_url` its request named.

Delivered from the Dagster daemon's side by the `webhook_deliveries` sensor, so nothing is
lost when the API restarts: the sensor finds finished jobs whose callback has not been
delivered, POSTs the job body (exactly what `GET /v1/jobs/{id}` answers) signed with
`X-Signature: sha256=<hex HMAC-SHA256 of the raw body, key MEDIA_PIPELINE_WEBHOOK_SECRET>`,
and records every attempt in `mp_webhook_deliveries`. A failed attempt is retried after
FIRST_RETRY, then twice as long each time, MAX_ATTEMPTS attempts in all.

Callback URLs reach only the hosts allowed: http(s) only, no credentials in the URL, and no
loopback, private, link-local or otherwise reserved address unless
MEDIA_PIPELINE_WEBHOOK_ALLOW_PRIVATE is set; checked when the job is requested and again
before each attempt (a name can resolve elsewhere later). Redirects are not followed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.orm import Session

from media_pipeline import db
from media_pipeline.db.models import Job, WebhookDelivery
from media_pipeline.resources import DatabaseResource
from media_pipeline.settings import load_settings

MAX_ATTEMPTS = 6
FIRST_RETRY = dt.timedelta(seconds=10)  # then 20, 40, 80, 160 s: about five minutes in all
TIMEOUT_SECONDS = 10
MAX_URL_CHARS = 2048
PER_EVALUATION = 20  # deliveries per sensor evaluation, so one evaluation stays well under its time limit
CANDIDATES = 500  # jobs with a callback and no attempt yet, looked at per evaluation
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
SIGNATURE_HEADER = "X-Signature"


def url_problem(url: str, *, allow_private: bool) -> str | None:
    """Why this callback URL is refused (a sentence), or None when it may be called."""
    if len(url) > MAX_URL_CHARS:
        return f"must be at most {MAX_URL_CHARS} characters"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a URL; send an absolute http:// or https:// URL"
    if parts.scheme not in ("http", "https"):
        return f"must be an http:// or https:// URL, not {parts.scheme or 'one without a scheme'}"
    if not parts.hostname:
        return "has no host name; send an absolute http:// or https:// URL"
    if parts.username or parts.password:
        return "must not carry a user name or password; authenticate the delivery by its X-Signature instead"
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port or 443, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError):
        return f"names a host that cannot be resolved ({parts.hostname})"
    if allow_private:
        return None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        ip = getattr(ip, "ipv4_mapped", None) or ip
        if not ip.is_global or ip.is_multicast:
            return (
                f"points at a loopback, private or reserved address ({ip}); callbacks go to public hosts only "
                "unless the operator sets MEDIA_PIPELINE_WEBHOOK_ALLOW_PRIVATE=true"
            )
    return None


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def retry_delay(attempt: int) -> dt.timedelta:
    """How long after failed attempt `attempt` (1-based) the next one is due."""
    return FIRST_RETRY * 2 ** (attempt - 1)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is an answer like any other non-2xx: recorded, retried


_opener = urllib.request.build_opener(_NoRedirects)


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post(url: str, body: bytes, secret: str, *, job_id: str, attempt: int) -> Outcome:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "media_pipeline-webhook",
            SIGNATURE_HEADER: signature(body, secret),
            "X-Media-Pipeline-Job": job_id,
            "X-Media-Pipeline-Attempt": str(attempt),
        },
    )
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            return Outcome(response.status, None)
    except urllib.error.HTTPError as exc:
        return Outcome(exc.code, f"the receiver answered HTTP {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Outcome(None, f"no answer: {reason}"[:500])


# -- what is due --------------------------------------------------------------------------------


def _first_attempts(session: Session, limit: int) -> list[Job]:
    """Jobs with a callback and no attempt yet (finished or not: the caller checks)."""
    attempted = sa.select(WebhookDelivery.id).where(WebhookDelivery.job_id == Job.id).exists()
    query = sa.select(Job).where(Job.callback_url.is_not(None), ~attempted).order_by(Job.created_at).limit(limit)
    return list(session.scalars(query))


def _retries(session: Session, now: dt.datetime, limit: int) -> list[tuple[Job, int]]:
    rows = session.execute(
        sa.select(Job, WebhookDelivery.attempt)
        .join(WebhookDelivery, WebhookDelivery.job_id == Job.id)
        .where(WebhookDelivery.next_attempt_at.is_not(None), WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    return [(job, attempt + 1) for job, attempt in rows]


def _finished(jobs: list[Job], instance: dg.DagsterInstance) -> list[Job]:
    """Those whose run has ended (their row may not say so yet)."""
    pending = [job for job in jobs if job.status not in TERMINAL and job.run_id]
    runs = instance.get_run_records(filters=dg.RunsFilter(run_ids=[job.run_id for job in pending])) if pending else []
    ended = {record.dagster_run.run_id for record in runs if record.dagster_run.is_finished}
    return [job for job in jobs if job.status in TERMINAL or job.run_id in ended]


def record(session: Session, job: Job, attempt: int, outcome: Outcome, now: dt.datetime) -> WebhookDelivery:
    session.execute(sa.update(WebhookDelivery).where(WebhookDelivery.job_id == job.id).values(next_attempt_at=None))
    retry = not outcome.delivered and attempt < MAX_ATTEMPTS
    row = WebhookDelivery(
        job_id=job.id,
        attempt=attempt,
        ts=now,
        status_code=outcome.status_code,
        error=outcome.error,
        delivered=outcome.delivered,
        next_attempt_at=now + retry_delay(attempt) if retry else None,
    )
    session.add(row)
    session.commit()
    return row


JobBody = Callable[[Session, Job], bytes]


def deliver_due(
    database_url: str,
    instance: dg.DagsterInstance,
    body_of: JobBody,
    *,
    secret: str,
    allow_private: bool,
    now: dt.datetime | None = None,
    limit: int = PER_EVALUATION,
) -> list[WebhookDelivery]:
    """Make every attempt due at `now`; the attempts made."""
    now = now or dt.datetime.now(dt.UTC)
    made: list[WebhookDelivery] = []
    db.migrate(database_url)
    session = db.session_factory(database_url)()
    try:
        # Unfinished jobs with callbacks are looked at too (their rows may not say they finished
        # yet), so look at many for the few that are due.
        due = [(job, 1) for job in _finished(_first_attempts(session, CANDIDATES), instance)][:limit]
        due += _retries(session, now, limit - len(due))
        for job, attempt in due[:limit]:
            made.append(_attempt(session, job, attempt, body_of, secret, allow_private, now))
    finally:
        session.close()
    return made


def _attempt(
    session: Session, job: Job, attempt: int, body_of: JobBody, secret: str, allow_private: bool, now: dt.datetime
) -> WebhookDelivery:
    url = job.callback_url or ""
    if not secret:
        outcome = Outcome(None, "MEDIA_PIPELINE_WEBHOOK_SECRET is not set where the Dagster daemon runs; nothing sent")
    elif problem := url_problem(url, allow_private=allow_private):
        outcome = Outcome(None, f"callback_url {problem}; nothing sent")
    else:
        outcome = post(url, body_of(session, job), secret, job_id=job.id, attempt=attempt)
    return record(session, job, attempt, outcome, now)


def api_job_body(instance: dg.DagsterInstance) -> JobBody:
    """The job as `GET /v1/jobs/{id}` answers it, read from this Dagster instance."""
    # The body is the API's own view of the job, so a receiver gets what a poll would; imported
    # here because only the daemon's sensor needs the API package.
    from api.dagster_gateway import InstanceReads
    from api.job_service import job_view

    gateway = InstanceReads(instance)

    def body(session: Session, job: Job) -> bytes:
        view = job_view(session, gateway, job)  # type: ignore[arg-type]  (reads only)
        return json.dumps(view.model_dump(mode="json"), separators=(",", ":")).encode()

    return body


@dg.sensor(
    name="webhook_deliveries",
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="POSTs each finished job to its callback_url (signed), retrying with backoff; every attempt is "
    "recorded and shown on the job.",
)
def webhook_deliveries(context: dg.SensorEvaluationContext, database: DatabaseResource) -> dg.SkipReason:
    settings = load_settings()
    started = time.monotonic()
    made = deliver_due(
        database.url,
        context.instance,
        api_job_body(context.instance),
        secret=settings.webhook_secret,
        allow_private=settings.webhook_allow_private,
    )
    for attempt in made:
        context.log.info(
            f"job {attempt.job_id} attempt {attempt.attempt}: "
            + ("delivered" if attempt.delivered else f"failed ({attempt.error})")
        )
    delivered = sum(1 for attempt in made if attempt.delivered)
    return dg.SkipReason(
        f"{len(made)} attempt(s), {delivered} delivered, in {time.monotonic() - started:.1f} s"
        if made
        else "no webhook due"
    )
