"""The command line's client commands: publish, jobs, export, over the HTTP API.

Everything goes through the API (`MEDIA_PIPELINE_API_URL`, the token from the settings or the
file `up` writes), so the command line can do nothing a client could not; errors are the API's
own sentences.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import httpx

from media_pipeline.core.files import atomic_path
from media_pipeline.settings import Settings, load_settings

TERMINAL = ("succeeded", "failed", "cancelled")
POLL_SECONDS = 0.5


class CommandError(Exception):
    """What to print (one sentence) before exiting with status 1."""


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    publish = commands.add_parser("publish", help="publish a timeline file as a new cut version (through the API)")
    publish.add_argument("file", type=Path, help="the timeline: .otio, .otioz, .edl, .xml, .fcpxml, .aaf, .ale")
    publish.add_argument("--project", required=True, help="project to publish into")
    publish.add_argument("--name", help="cut name (default: the file name without extension)")
    publish.add_argument("--rate", help="frame rate of an EDL: 24, 25, 23.976, 29.97, 30000/1001 ...")
    publish.add_argument("--wait", action="store_true", help="follow the ingest job until it finishes")
    jobs = commands.add_parser("jobs", help="list recent jobs, or show (and follow) one")
    jobs.add_argument("id", nargs="?", help="a job id; without one, the most recent jobs are listed")
    jobs.add_argument("--follow", action="store_true", help="follow the job until it finishes")
    export = commands.add_parser("export", help="download a cut version as a timeline file")
    export.add_argument("cut", type=int, help="the cut version's id")
    export.add_argument("--format", choices=("edl", "otio", "otioz"), default="otio")
    export.add_argument("--media", choices=("source", "proxies"), default="source")
    export.add_argument("--output", "-o", type=Path, help="file to write (default: the API's file name, here)")


def api_url(settings: Settings) -> str:
    return settings.api_url or f"http://{settings.host}:{settings.api_port}"


def api_token(settings: Settings) -> str:
    if settings.api_token:
        return settings.api_token
    token_file = settings.home / "api_token"  # what `up` generated and printed
    return token_file.read_text().strip() if token_file.is_file() else ""


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    settings = load_settings()
    url = api_url(settings)
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_token(settings)}"}, timeout=60) as api:
            if args.command == "publish":
                return publish(api, args, out)
            if args.command == "jobs":
                return jobs(api, args, out)
            return export(api, args, out)
    except httpx.TransportError as exc:
        print(
            f"error: cannot reach the API at {url} ({type(exc).__name__}); is `media-pipeline up` running? "
            "Set MEDIA_PIPELINE_API_URL to its address",
            file=sys.stderr,
        )
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
    return 1


def checked(response: httpx.Response) -> httpx.Response:
    """The response, or CommandError with the API's own sentence."""
    if response.is_success:
        return response
    try:
        detail = response.json().get("detail") or response.text
    except ValueError:
        detail = response.text.strip() or response.reason_phrase
    raise CommandError(f"{detail} (HTTP {response.status_code})")


def publish(api: httpx.Client, args: argparse.Namespace, out: TextIO) -> int:
    path: Path = args.file
    if not path.is_file():
        raise CommandError(f"{path} is not a file; give the path of a timeline file")
    data = {"project": args.project, "name": args.name or path.stem, **({"rate": args.rate} if args.rate else {})}
    with path.open("rb") as handle:
        body = checked(api.post("/v1/cuts", data=data, files={"file": (path.name, handle)})).json()
    cut, job = body["cut"], body["job"]
    print(f"cut {cut['id']} {cut['partition_key']}: ingest job {job['id']} {job['status']}", file=out)
    return follow(api, job["id"], out) if args.wait else 0


def jobs(api: httpx.Client, args: argparse.Namespace, out: TextIO) -> int:
    if args.id is None:
        for job in checked(api.get("/v1/jobs", params={"limit": 20})).json()["items"]:
            print(job_line(job), file=out)
        return 0
    if args.follow:
        return follow(api, args.id, out)
    job = checked(api.get(f"/v1/jobs/{args.id}")).json()
    print(job_line(job), file=out)
    return 0 if job["status"] != "failed" else 1


def job_line(job: dict[str, Any]) -> str:
    line = f"{job['id']} {job['kind']} {job['status']} {round(100 * (job.get('progress') or 0))}%"
    if job.get("stage"):
        line += f" {job['stage']}"
    if job.get("error"):
        line += f": {job['error']}"
    return line


def follow(api: httpx.Client, job_id: str, out: TextIO) -> int:
    """Poll the job until it finishes: a progress bar on a terminal, a line per change otherwise."""
    terminal = out.isatty()
    last = ""
    while True:
        job = checked(api.get(f"/v1/jobs/{job_id}")).json()
        line = progress_bar(job) if terminal else job_line(job)
        if line != last:
            # On a terminal the bar is redrawn in place (carriage return, then clear to the end).
            print(f"\r{line}\x1b[K" if terminal else line, end="" if terminal else "\n", file=out, flush=True)
            last = line
        if job["status"] in TERMINAL:
            break
        time.sleep(POLL_SECONDS)
    if terminal:
        print(f"\r{job_line(job)}\x1b[K", file=out)
    return 0 if job["status"] == "succeeded" else 1


def progress_bar(job: dict[str, Any], width: int = 30) -> str:
    done = max(0.0, min(1.0, job.get("progress") or 0))
    filled = round(done * width)
    bar = "#" * filled + "-" * (width - filled)
    return f"{job['id'][:8]} [{bar}] {round(100 * done):3d}% {job['status']} {job.get('stage') or ''}".rstrip()


def export(api: httpx.Client, args: argparse.Namespace, out: TextIO) -> int:
    response = checked(api.get(f"/v1/cuts/{args.cut}/export", params={"format": args.format, "media": args.media}))
    match = re.search(r'filename="?([^";]+)"?', response.headers.get("content-disposition", ""))
    target: Path = args.output or Path(Path(match.group(1)).name if match else f"cut_{args.cut}.{args.format}")
    with atomic_path(target) as tmp:
        tmp.write_bytes(response.content)
    print(f"wrote {target} ({len(response.content)} bytes)", file=out)
    return 0
