"""`media-pipeline up`: the whole system on one machine, embedded defaults, one command; and
`publish`, `jobs`, `export`: a client of its HTTP API."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import yaml

from media_pipeline import api_client, db
from media_pipeline.settings import Settings, SettingsError, load_settings, shared_state_problems

INSTANCE_TEMPLATES = Path(__file__).parent / "dagster_home"
# Everything the services write (stored timelines, artifacts, logs, databases) is readable by
# their group at most: a dropped or uploaded file may be private, and other local users should
# not read it through the artifact root.
SERVICE_UMASK = 0o027


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="media-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the Dagster webserver, the Dagster daemon and the API")
    up.add_argument("--home", help="home folder (default: $MEDIA_PIPELINE_HOME or ./.media_pipeline)")
    up.add_argument("--ui-port", type=int, help="Dagster webserver port (default 3000)")
    up.add_argument("--api-port", type=int, help="API port (default 8000)")
    up.add_argument("--no-sample", action="store_true", help="do not drop the generated sample cut on first start")
    commands.add_parser("migrate", help="apply domain database migrations and exit")
    worker = commands.add_parser(
        "worker", help="execute steps of runs sent to Celery (MEDIA_PIPELINE_EXECUTOR=celery), on this machine"
    )
    worker.add_argument(
        "--queues", help="comma-separated queues to consume: dagster, ffmpeg, generators (default: all of them)"
    )
    worker.add_argument(
        "--concurrency", type=int, help="steps executed at once, one process each (default: the CPU count)"
    )
    worker.add_argument("--name", help="this worker's Celery node name (default: media_pipeline-<pid>@<host id>)")
    api_client.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    if args.command in ("publish", "jobs", "export"):
        return api_client.run(args)

    try:
        if args.command == "worker":
            return run_worker(args.queues, args.concurrency, args.name)
        if args.command == "migrate":
            db.migrate(load_settings().database_url)
            print("domain database is at the newest schema")
            return 0
        overrides = {
            "MEDIA_PIPELINE_HOME": args.home,
            "MEDIA_PIPELINE_UI_PORT": args.ui_port,
            "MEDIA_PIPELINE_API_PORT": args.api_port,
        }
        env = {**os.environ, **{name: str(value) for name, value in overrides.items() if value is not None}}
        return run_up(env, sample=not args.no_sample)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def prepare(env: dict[str, str]) -> Settings:
    """Resolve the settings into `env` (every variable, for the services `up` starts), create
    folders, write the Dagster instance config, migrate."""
    settings = load_settings(env)
    if not settings.api_token:
        token_file = settings.home / "api_token"
        if not token_file.exists():
            token_file.parent.mkdir(parents=True, exist_ok=True)
            token_file.write_text(secrets.token_urlsafe(24))
            token_file.chmod(0o600)
        env["MEDIA_PIPELINE_API_TOKEN"] = token_file.read_text().strip()
        settings = load_settings(env)
    env.update(settings.environment())
    check_shared_state(settings)
    if settings.dagster_postgres_url:
        env["MEDIA_PIPELINE_DAGSTER_POSTGRES_URL"] = dagster_postgres_url(settings.dagster_postgres_url)
    for folder in (settings.home, settings.artifact_root, settings.dagster_home, *settings.watch_dirs):
        folder.mkdir(parents=True, exist_ok=True)
    write_instance_config(settings)
    env["DAGSTER_HOME"] = str(settings.dagster_home)
    db.migrate(settings.database_url)
    init_dagster_storage(settings.dagster_home, env)
    return settings


class StateNotShared(ValueError):
    """Celery mode with a database or artifact store only this machine sees."""


def check_shared_state(settings: Settings) -> None:
    if settings.executor != "celery":
        return
    problems = shared_state_problems(settings)
    if problems:
        raise StateNotShared(
            "MEDIA_PIPELINE_EXECUTOR=celery runs steps on workers that may be on other machines, but "
            + "; and ".join(problems)
            + "."
        )


def run_worker(queues: str | None, concurrency: int | None, name: str | None) -> int:
    """`media-pipeline worker`: Dagster's Celery worker (dagster-celery's step task) with this
    project's code and settings, in this process."""
    os.umask(SERVICE_UMASK)
    settings = load_settings()
    if settings.executor != "celery":
        print(
            f"error: MEDIA_PIPELINE_EXECUTOR is {settings.executor}: runs execute their steps themselves and send "
            "none to workers; set MEDIA_PIPELINE_EXECUTOR=celery here and for the code server, daemon and webserver",
            file=sys.stderr,
        )
        return 2
    try:
        check_shared_state(settings)
    except StateNotShared as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from media_pipeline.platform.executors import QUEUES

    chosen = tuple(q.strip() for q in queues.split(",") if q.strip()) if queues else settings.worker_queues
    unknown = [q for q in chosen if q not in QUEUES]
    if unknown or not chosen:
        print(f"error: --queues takes {', '.join(QUEUES)}, not {queues!r}", file=sys.stderr)
        return 2
    if concurrency is not None and concurrency < 1:
        print(f"error: --concurrency must be at least 1, not {concurrency}", file=sys.stderr)
        return 2
    # Steps open the instance from the run's instance reference, which reads this variable.
    os.environ["MEDIA_PIPELINE_DAGSTER_POSTGRES_URL"] = dagster_postgres_url(settings.dagster_postgres_url)
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home))
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    from media_pipeline.platform.celery_worker import app, preload, worker_argv

    preload()

    argv = worker_argv(
        settings, chosen, concurrency or os.cpu_count() or 1, name or f"media_pipeline-{os.getpid()}@{settings.host_id}"
    )
    app.worker_main(argv)
    return 0


def init_dagster_storage(dagster_home: Path, env: dict[str, str]) -> None:
    """Create Dagster's storage schemas once, before the webserver and daemon start together
    and race to create them (SQLite answers the loser with "table alembic_version already exists")."""
    import dagster as dg

    saved = dict(os.environ)
    os.environ.update(env)  # the instance config reads env vars (Postgres URL)
    try:
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            instance.get_runs(limit=1)
            instance.all_instigator_state()
            instance.get_latest_materialization_event(dg.AssetKey("cut_timeline"))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def dagster_postgres_url(url: str) -> str:
    """Dagster's Postgres storage needs the psycopg2 driver; SQLAlchemy 2.1 reads a bare
    postgresql:// as psycopg 3, on which Dagster's storage fails and runs never start."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql+psycopg2://{rest}" if sep and scheme.startswith("postgres") else url


def write_instance_config(settings: Settings) -> Path:
    """$DAGSTER_HOME/dagster.yaml from the packaged template, with this machine's run limit."""
    template = "dagster.postgres.yaml" if settings.dagster_postgres_url else "dagster.yaml"
    return write_run_limit(
        INSTANCE_TEMPLATES / template,
        settings.dagster_home / "dagster.yaml",
        settings.max_concurrent_runs,
        header=f"# Written by `media-pipeline up` from {template}; edits are overwritten.\n",
    )


def write_run_limit(source: Path, target: Path, max_concurrent_runs: int, *, header: str) -> Path:
    """The instance config `source` with `max_concurrent_runs` as its run limit, written to `target`.

    Dagster reads no environment variable for `concurrency.runs.max_concurrent_runs`, so the
    value of MEDIA_PIPELINE_MAX_CONCURRENT_RUNS has to be written into the file: here for `up`,
    and by the image's entrypoint (deploy/docker-entrypoint.py) for the containers.
    """
    if max_concurrent_runs < 1:
        raise ValueError(f"the run limit must be at least 1, not {max_concurrent_runs}")
    config = yaml.safe_load(source.read_text())
    config.setdefault("concurrency", {}).setdefault("runs", {})["max_concurrent_runs"] = max_concurrent_runs
    target.write_text(header + yaml.safe_dump(config, sort_keys=False))
    return target


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def service_commands(settings: Settings) -> dict[str, list[str]]:
    bin_dir = Path(sys.executable).parent
    module = ["-m", "media_pipeline.definitions"]
    return {
        # Loopback only, under the prefix the API proxies: the UI is reached through the API's
        # sign-in (api/dagster_ui.py), never on a port of its own on the network.
        "webserver": [
            str(bin_dir / "dagster-webserver"),
            *("-h", "127.0.0.1", "-p", str(settings.ui_port), "--path-prefix", "/dagster"),
            *module,
        ],
        "daemon": [str(bin_dir / "dagster-daemon"), "run", *module],
        "api": [
            sys.executable,
            "-m",
            "uvicorn",
            "api.main:app",
            "--host",
            settings.host,
            "--port",
            str(settings.api_port),
            "--log-level",
            "warning",
        ],
    }


def run_up(env: dict[str, str], sample: bool) -> int:
    os.umask(SERVICE_UMASK)  # inherited by the webserver, the daemon, the API and every run
    try:
        settings = prepare(env)
    except StateNotShared as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from media_pipeline.resources import ArtifactStore  # imports Dagster: not for the client commands

    problem = ArtifactStore.from_settings(settings).check()
    if problem:
        # Every render would fail at its first upload: say so now, not in each run's log.
        print(f"error: {problem}", file=sys.stderr)
        return 2
    for name, port in (("Dagster UI", settings.ui_port), ("API", settings.api_port)):
        if not port_free(settings.host, port):
            print(
                f"error: port {port} for the {name} is in use; stop what uses it or pick another port "
                f"(--ui-port / --api-port)",
                file=sys.stderr,
            )
            return 2
    logs = settings.home / "logs"
    logs.mkdir(exist_ok=True)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    # Put back on return: `up` is also called in-process (tests), where the caller's handlers
    # must outlive it.
    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        for name, command in service_commands(settings).items():
            log = (logs / f"{name}.log").open("ab")
            # Own session: Ctrl-C reaches only us, and we stop the services in order.
            processes[name] = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        print_banner(settings, env["MEDIA_PIPELINE_API_TOKEN"], logs)
        if sample and settings.watch_dirs:
            dropped = drop_sample(settings)
            if dropped:
                print(f"sample cut dropped into the watch folder: {dropped}")
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    print(
                        f"error: the {name} exited with code {process.returncode}; see {logs / (name + '.log')}",
                        file=sys.stderr,
                    )
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        shutdown(processes)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def shutdown(processes: dict[str, subprocess.Popen[bytes]], grace: float = 15) -> None:
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if processes:
        print("stopped: webserver, daemon and API")


def print_banner(settings: Settings, token: str, logs: Path) -> None:
    watch = ", ".join(str(p) for p in settings.watch_dirs) or "(none)"
    print(
        "\n".join(
            [
                "media_pipeline is starting (Ctrl-C stops everything)",
                f"  Dagster UI     http://{settings.host}:{settings.api_port}/dagster/  (sign in with the API token)",
                f"  API            http://{settings.host}:{settings.api_port}  (docs at /docs)",
                f"  API token      {token}",
                f"  watch folders  {watch}",
                f"  artifacts      {settings.artifact_root}" + storage_note(settings),
                f"  logs           {logs}",
            ]
        ),
        flush=True,
    )


def storage_note(settings: Settings) -> str:
    storage = settings.storage
    if storage.backend == "local":
        return ""
    where = storage.s3_endpoint_url or "AWS S3"
    return f"  (working copy; kept in s3://{storage.s3_bucket}/{storage.s3_prefix} at {where})"


def drop_sample(settings: Settings) -> Path | None:
    """On first start, generate frame-indexed media and drop a cut of it into the watch folder."""
    marker = settings.home / ".sample_dropped"
    if marker.exists():
        return None
    from media_pipeline.samples import make_sample_cut

    target = settings.watch_dirs[0] / "demo"
    # Its media goes into the first media root: media is read from nowhere else.
    path = make_sample_cut(settings.media_roots[0] / "samples", target, rate=Fraction(24))
    marker.write_text(str(path))
    return path


if __name__ == "__main__":
    raise SystemExit(main())
