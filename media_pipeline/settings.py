"""Every setting the pipeline reads, in one place.

Configuration is environment variables only, so the Dagster code location, the daemon, the
API and the CLI all see the same values. Each has a default that makes an embedded,
single-workstation setup work with nothing installed: SQLite databases and an artifact folder
under the home folder.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "MEDIA_PIPELINE_"


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    doc: str


# The README's configuration table is generated from (and tested against) this list.
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "MEDIA_PIPELINE_HOME", "./.media_pipeline", "Home folder: databases, artifacts, watch folder, Dagster home."
    ),
    Setting(
        "MEDIA_PIPELINE_DATABASE_URL",
        "sqlite:///{home}/media_pipeline.db",
        "Domain database (SQLAlchemy URL). `postgresql+psycopg://user@host/db` for Postgres.",
    ),
    Setting(
        "MEDIA_PIPELINE_DAGSTER_POSTGRES_URL",
        "",
        "Dagster instance storage on Postgres. Empty: SQLite files under `{home}/dagster`.",
    ),
    Setting("MEDIA_PIPELINE_ARTIFACT_ROOT", "{home}/artifacts", "Where every produced file is written."),
    Setting(
        "MEDIA_PIPELINE_WATCH_DIRS",
        "{home}/watch",
        "Watched folders, separated by `" + os.pathsep + "`; one sensor each. Empty: no sensors.",
    ),
    Setting(
        "MEDIA_PIPELINE_MEDIA_ROOTS",
        "{home}/media",
        "The only folders media may be read from (with the watch folders, always), `"
        + os.pathsep
        + "`-separated; also searched by file name for media whose recorded path is not inside them.",
    ),
    Setting(
        "MEDIA_PIPELINE_EDL_RATE",
        "24",
        "Frame rate for EDLs dropped into watch folders without a `watch.json` `rate`: 25, 23.976, 29.97, 30000/1001.",
    ),
    Setting("MEDIA_PIPELINE_API_TOKEN", "", "API token for `/v1` routes. Empty: `up` generates one and prints it."),
    Setting(
        "MEDIA_PIPELINE_METRICS_TOKEN",
        "",
        "Bearer token for `GET /metrics` (Prometheus). Empty: `/metrics` answers loopback clients only.",
    ),
    Setting("MEDIA_PIPELINE_UI_PORT", "3000", "Dagster webserver port."),
    Setting("MEDIA_PIPELINE_API_PORT", "8000", "API port."),
    Setting("MEDIA_PIPELINE_HOST", "127.0.0.1", "Interface the webserver and API bind to."),
    Setting(
        "MEDIA_PIPELINE_API_URL",
        "",
        "API the command line talks to (`publish`, `jobs`, `export`). Empty: `http://{host}:{api port}`.",
    ),
    Setting(
        "MEDIA_PIPELINE_FFMPEG_CONCURRENCY",
        "{cpus}",
        "ffmpeg processes one run may start at once (thumbnails are rendered in parallel inside one run).",
    ),
    Setting("MEDIA_PIPELINE_MAX_CONCURRENT_RUNS", "4", "Runs the queued run coordinator starts at once."),
    Setting("MEDIA_PIPELINE_MAX_UPLOAD_BYTES", str(50 * 1024 * 1024), "Largest timeline upload the API accepts."),
    Setting(
        "MEDIA_PIPELINE_MAX_TIMELINE_ITEMS",
        "20000",
        "Most items (clips, gaps, transitions, tracks; EDL events) a timeline may hold.",
    ),
    Setting("MEDIA_PIPELINE_MAX_TIMELINE_DEPTH", "32", "Deepest nesting of tracks and stacks a timeline may have."),
    Setting("MEDIA_PIPELINE_CORS_ORIGINS", "", "Comma-separated origins allowed by CORS. Empty: no CORS headers."),
    Setting("MEDIA_PIPELINE_SENSOR_INTERVAL", "5", "Seconds between watch-folder sensor evaluations."),
    Setting(
        "MEDIA_PIPELINE_MAX_PIXELS",
        "100000000",
        "Largest picture (width x height) read from media, checked from headers before decoding.",
    ),
    Setting(
        "MEDIA_PIPELINE_SETTLE_SECONDS",
        "2",
        "A dropped file is ingested once its size and mtime are unchanged for this long (copy still running).",
    ),
    Setting(
        "MEDIA_PIPELINE_WEBHOOK_SECRET",
        "",
        "Key of the `X-Signature` HMAC on webhook deliveries. Empty: requests with a `callback_url` are refused.",
    ),
    Setting(
        "MEDIA_PIPELINE_WEBHOOK_ALLOW_PRIVATE",
        "false",
        "`true`: callback URLs may point at loopback, private and link-local addresses (tests, one-host setups).",
    ),
    Setting(
        "MEDIA_PIPELINE_SLIDESHOW_FPS", "30", "Slideshow frame rate when a render names none (25, 30, 30000/1001)."
    ),
    Setting("MEDIA_PIPELINE_SLIDESHOW_MIN_SHOT", "2.5", "Shortest slideshow scene, seconds (`minShot`)."),
    Setting("MEDIA_PIPELINE_SLIDESHOW_MAX_SHOT", "8.0", "Longest slideshow scene, seconds (`maxShot`)."),
    Setting("MEDIA_PIPELINE_SLIDESHOW_XFADE", "0.5", "Crossfade between slideshow scenes, seconds (`xfade`)."),
    Setting("MEDIA_PIPELINE_SLIDESHOW_CRF", "18", "H.264 CRF of slideshow renders."),
    Setting("MEDIA_PIPELINE_SLIDESHOW_PRESET", "medium", "x264 preset of slideshow renders."),
    Setting("MEDIA_PIPELINE_SLIDESHOW_RESOLUTION", "1920x1080", "Slideshow output size."),
    Setting("MEDIA_PIPELINE_SLIDESHOW_LOUDNESS", "-16", "Slideshow loudness target, LUFS integrated."),
    Setting("MEDIA_PIPELINE_SLIDESHOW_MAX_PIXELS", "50000000", "Largest slideshow image (width x height)."),
    Setting("MEDIA_PIPELINE_MAX_VIDEOS_PER_REQUEST", "100", "Most videos one frame extraction request may hold."),
    Setting(
        "MEDIA_PIPELINE_FETCH_ALLOW_PRIVATE",
        "",
        "`1` lets extraction download from loopback, private and link-local addresses. Empty: refused.",
    ),
    Setting("MEDIA_PIPELINE_FETCH_MAX_BYTES", str(2 * 1024**3), "Largest video an extraction downloads (bytes)."),
    Setting("MEDIA_PIPELINE_FETCH_TIMEOUT", "300", "Seconds one extraction download may take."),
    Setting("MEDIA_PIPELINE_EXTRACTION_ITEM_TIMEOUT", "600", "Seconds one extraction item may take to decode."),
    Setting(
        "MEDIA_PIPELINE_EXECUTOR",
        "in_process",
        "How a run executes its steps: `in_process` (one process), `multiprocess` (a process per step) or "
        "`celery` (steps on `media-pipeline worker` processes, on any machine; see Scaling).",
    ),
    Setting(
        "MEDIA_PIPELINE_CELERY_BROKER",
        "pyamqp://guest:guest@127.0.0.1:5672//",
        "Celery broker in `celery` mode: RabbitMQ `amqp://user:password@host:5672//` or Redis `redis://host:6379/0`.",
    ),
    Setting(
        "MEDIA_PIPELINE_CELERY_BACKEND",
        "rpc://",
        "Celery result backend in `celery` mode: `rpc://` (results over the broker) or `redis://host:6379/1`.",
    ),
    Setting(
        "MEDIA_PIPELINE_WORKER_QUEUES",
        "dagster,ffmpeg,generators",
        "Queues `media-pipeline worker` consumes when `--queues` names none: `dagster` (light steps), `ffmpeg` "
        "(encodes), `generators` (provider calls).",
    ),
    Setting(
        "MEDIA_PIPELINE_CELERY_QUEUE_PREFIX",
        "",
        "Put before every Celery queue name (`<prefix>ffmpeg`), so several deployments can share one broker.",
    ),
    Setting(
        "MEDIA_PIPELINE_ARTIFACTS_SHARED",
        "false",
        "`true`: `MEDIA_PIPELINE_ARTIFACT_ROOT` is a mount every machine sees at the same path (NFS, SMB, ...), "
        "as `celery` mode needs.",
    ),
    Setting(
        "MEDIA_PIPELINE_CHUNK_SEGMENTS",
        "",
        "Segments each chunk step of a final video encodes. Empty: all in one step with the `in_process` "
        "executor, 4 with the others (so chunks spread over workers).",
    ),
    Setting(
        "MEDIA_PIPELINE_HOST_ID",
        "{hostname}",
        "This machine's name in run tags; the run reaper judges only runs whose worker ran on its own host id.",
    ),
    Setting("MEDIA_PIPELINE_LIBRARY_MAX_BYTES", str(2 * 1024**3), "Largest media library upload (bytes)."),
    Setting("MEDIA_PIPELINE_LIBRARY_MAX_PIXELS", "50000000", "Largest picture (width x height) the library accepts."),
    Setting("MEDIA_PIPELINE_LIBRARY_MAX_DURATION", "3600", "Longest video the library accepts, seconds."),
    Setting(
        "MEDIA_PIPELINE_LIBRARY_INLINE_PIXELS",
        "16000000",
        "Image edits of pictures up to this size (width x height) answer inline; larger ones run as a job.",
    ),
    Setting(
        "MEDIA_PIPELINE_RUNWAY_API_KEY", "", "Runway API key for the `runway` generator. Empty: it is unavailable."
    ),
    Setting("MEDIA_PIPELINE_RUNWAY_URL", "https://api.dev.runwayml.com", "Runway API base URL."),
    Setting(
        "MEDIA_PIPELINE_STABILITY_API_KEY", "", "Stability API key for the `stability` generator. Empty: unavailable."
    ),
    Setting("MEDIA_PIPELINE_STABILITY_URL", "https://api.stability.ai", "Stability API base URL."),
    Setting(
        "MEDIA_PIPELINE_GENERATOR_DOWNLOAD_HOSTS",
        "",
        "Comma-separated hosts (besides the provider's API host) generated clips may be downloaded from.",
    ),
    Setting(
        "MEDIA_PIPELINE_GENERATOR_REQUEST_TIMEOUT", "60", "Seconds one request to a generator's provider may take."
    ),
    Setting("MEDIA_PIPELINE_GENERATOR_TIMEOUT", "1800", "Seconds one segment's generation may take, polling included."),
    Setting(
        "MEDIA_PIPELINE_STORAGE",
        "local",
        "Where finished artifacts are kept: `local` (the artifact root) or `s3` (a bucket; the root is then a cache).",
    ),
    Setting("MEDIA_PIPELINE_S3_ENDPOINT_URL", "", "S3 endpoint, e.g. `http://minio:9000`. Empty: AWS S3."),
    Setting("MEDIA_PIPELINE_S3_BUCKET", "", "S3 bucket for artifacts (required with `MEDIA_PIPELINE_STORAGE=s3`)."),
    Setting("MEDIA_PIPELINE_S3_REGION", "us-east-1", "S3 region."),
    Setting("MEDIA_PIPELINE_S3_ACCESS_KEY", "", "S3 access key id. Empty: boto3's own lookup (env, profile, role)."),
    Setting("MEDIA_PIPELINE_S3_SECRET_KEY", "", "S3 secret access key."),
    Setting("MEDIA_PIPELINE_S3_PREFIX", "", "Key prefix inside the bucket (`media_pipeline/`). Empty: none."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def _raw(name: str, env: dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    value = env.get(name)
    if value is not None and value != "":
        return value
    default = _BY_NAME[name].default
    home = str(Path(env.get("MEDIA_PIPELINE_HOME") or _BY_NAME["MEDIA_PIPELINE_HOME"].default).resolve())
    return default.format(home=home, cpus=os.cpu_count() or 2, hostname=socket.gethostname())


def _paths(value: str) -> tuple[Path, ...]:
    return tuple(Path(p).expanduser().resolve() for p in value.split(os.pathsep) if p.strip())


@dataclass(frozen=True)
class SlideshowDefaults:
    """What a slideshow render uses for each option it does not name."""

    fps: str = "30"
    min_shot: float = 2.5
    max_shot: float = 8.0
    xfade: float = 0.5
    crf: int = 18
    preset: str = "medium"
    resolution: str = "1920x1080"
    loudness: float = -16.0
    max_pixels: int = 50_000_000


@dataclass(frozen=True)
class StorageSettings:
    """Where finished artifacts are kept (see media_pipeline/core/storage.py)."""

    backend: str = "local"  # local | s3
    s3_endpoint_url: str = ""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_prefix: str = ""


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    dagster_postgres_url: str
    artifact_root: Path
    watch_dirs: tuple[Path, ...]
    media_roots: tuple[Path, ...]
    edl_rate: str  # exact text such as 25 or 24000/1001; parsed where it is used
    api_token: str
    ui_port: int
    api_port: int
    host: str
    ffmpeg_concurrency: int
    max_concurrent_runs: int
    max_upload_bytes: int
    max_timeline_items: int = 20_000
    max_timeline_depth: int = 32
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    sensor_interval: int = 5
    settle_seconds: float = 2.0
    max_pixels: int = 100_000_000
    webhook_secret: str = ""
    webhook_allow_private: bool = False
    slideshow: SlideshowDefaults = field(default_factory=lambda: SlideshowDefaults())
    max_videos_per_request: int = 100
    fetch_allow_private: bool = False
    fetch_max_bytes: int = 2 * 1024**3
    fetch_timeout: int = 300
    extraction_item_timeout: int = 600
    api_url: str = ""
    executor: str = "in_process"
    celery_broker: str = "pyamqp://guest:guest@127.0.0.1:5672//"
    celery_backend: str = "rpc://"
    worker_queues: tuple[str, ...] = ("dagster", "ffmpeg", "generators")
    celery_queue_prefix: str = ""
    artifacts_shared: bool = False
    host_id: str = field(default_factory=socket.gethostname)
    chunk_segments: int | None = None
    library_max_bytes: int = 2 * 1024**3
    library_max_pixels: int = 50_000_000
    library_max_duration: int = 3600
    library_inline_pixels: int = 16_000_000
    runway_api_key: str = ""
    runway_url: str = "https://api.dev.runwayml.com"
    stability_api_key: str = ""
    stability_url: str = "https://api.stability.ai"
    generator_download_hosts: tuple[str, ...] = ()
    generator_request_timeout: float = 60.0
    generator_timeout: float = 1800.0
    storage: StorageSettings = field(default_factory=lambda: StorageSettings())
    metrics_token: str = ""

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"


def load_settings(env: dict[str, str] | None = None) -> Settings:
    def get(name: str) -> str:
        return _raw(name, env)

    return Settings(
        home=Path(get("MEDIA_PIPELINE_HOME")).expanduser().resolve(),
        database_url=get("MEDIA_PIPELINE_DATABASE_URL"),
        dagster_postgres_url=get("MEDIA_PIPELINE_DAGSTER_POSTGRES_URL"),
        artifact_root=Path(get("MEDIA_PIPELINE_ARTIFACT_ROOT")).expanduser().resolve(),
        watch_dirs=_paths(get("MEDIA_PIPELINE_WATCH_DIRS")),
        # Media next to a dropped timeline (relative paths) is read from its watch folder.
        media_roots=tuple(
            dict.fromkeys([*_paths(get("MEDIA_PIPELINE_MEDIA_ROOTS")), *_paths(get("MEDIA_PIPELINE_WATCH_DIRS"))])
        ),
        edl_rate=get("MEDIA_PIPELINE_EDL_RATE"),
        api_token=get("MEDIA_PIPELINE_API_TOKEN"),
        ui_port=int(get("MEDIA_PIPELINE_UI_PORT")),
        api_port=int(get("MEDIA_PIPELINE_API_PORT")),
        host=get("MEDIA_PIPELINE_HOST"),
        ffmpeg_concurrency=max(1, int(get("MEDIA_PIPELINE_FFMPEG_CONCURRENCY"))),
        max_concurrent_runs=max(1, int(get("MEDIA_PIPELINE_MAX_CONCURRENT_RUNS"))),
        max_upload_bytes=int(get("MEDIA_PIPELINE_MAX_UPLOAD_BYTES")),
        max_timeline_items=max(1, int(get("MEDIA_PIPELINE_MAX_TIMELINE_ITEMS"))),
        max_timeline_depth=max(1, int(get("MEDIA_PIPELINE_MAX_TIMELINE_DEPTH"))),
        cors_origins=tuple(o.strip() for o in get("MEDIA_PIPELINE_CORS_ORIGINS").split(",") if o.strip()),
        sensor_interval=int(get("MEDIA_PIPELINE_SENSOR_INTERVAL")),
        settle_seconds=float(get("MEDIA_PIPELINE_SETTLE_SECONDS")),
        max_pixels=_positive("MEDIA_PIPELINE_MAX_PIXELS", get("MEDIA_PIPELINE_MAX_PIXELS")),
        webhook_secret=get("MEDIA_PIPELINE_WEBHOOK_SECRET"),
        webhook_allow_private=_flag("MEDIA_PIPELINE_WEBHOOK_ALLOW_PRIVATE", get),
        slideshow=SlideshowDefaults(
            fps=get("MEDIA_PIPELINE_SLIDESHOW_FPS"),
            min_shot=float(get("MEDIA_PIPELINE_SLIDESHOW_MIN_SHOT")),
            max_shot=float(get("MEDIA_PIPELINE_SLIDESHOW_MAX_SHOT")),
            xfade=float(get("MEDIA_PIPELINE_SLIDESHOW_XFADE")),
            crf=int(get("MEDIA_PIPELINE_SLIDESHOW_CRF")),
            preset=get("MEDIA_PIPELINE_SLIDESHOW_PRESET"),
            resolution=get("MEDIA_PIPELINE_SLIDESHOW_RESOLUTION"),
            loudness=float(get("MEDIA_PIPELINE_SLIDESHOW_LOUDNESS")),
            max_pixels=int(get("MEDIA_PIPELINE_SLIDESHOW_MAX_PIXELS")),
        ),
        max_videos_per_request=max(1, int(get("MEDIA_PIPELINE_MAX_VIDEOS_PER_REQUEST"))),
        fetch_allow_private=flag(get("MEDIA_PIPELINE_FETCH_ALLOW_PRIVATE")),
        fetch_max_bytes=int(get("MEDIA_PIPELINE_FETCH_MAX_BYTES")),
        fetch_timeout=int(get("MEDIA_PIPELINE_FETCH_TIMEOUT")),
        extraction_item_timeout=int(get("MEDIA_PIPELINE_EXTRACTION_ITEM_TIMEOUT")),
        api_url=get("MEDIA_PIPELINE_API_URL").rstrip("/"),
        executor=_choice("MEDIA_PIPELINE_EXECUTOR", get("MEDIA_PIPELINE_EXECUTOR"), EXECUTORS),
        celery_broker=get("MEDIA_PIPELINE_CELERY_BROKER"),
        celery_backend=get("MEDIA_PIPELINE_CELERY_BACKEND"),
        worker_queues=_names("MEDIA_PIPELINE_WORKER_QUEUES", get("MEDIA_PIPELINE_WORKER_QUEUES")),
        celery_queue_prefix=get("MEDIA_PIPELINE_CELERY_QUEUE_PREFIX").strip(),
        artifacts_shared=_flag("MEDIA_PIPELINE_ARTIFACTS_SHARED", get),
        host_id=get("MEDIA_PIPELINE_HOST_ID"),
        chunk_segments=_positive("MEDIA_PIPELINE_CHUNK_SEGMENTS", value)
        if (value := get("MEDIA_PIPELINE_CHUNK_SEGMENTS").strip())
        else None,
        library_max_bytes=_positive("MEDIA_PIPELINE_LIBRARY_MAX_BYTES", get("MEDIA_PIPELINE_LIBRARY_MAX_BYTES")),
        library_max_pixels=_positive("MEDIA_PIPELINE_LIBRARY_MAX_PIXELS", get("MEDIA_PIPELINE_LIBRARY_MAX_PIXELS")),
        library_max_duration=_positive(
            "MEDIA_PIPELINE_LIBRARY_MAX_DURATION", get("MEDIA_PIPELINE_LIBRARY_MAX_DURATION")
        ),
        library_inline_pixels=_positive(
            "MEDIA_PIPELINE_LIBRARY_INLINE_PIXELS", get("MEDIA_PIPELINE_LIBRARY_INLINE_PIXELS")
        ),
        runway_api_key=get("MEDIA_PIPELINE_RUNWAY_API_KEY"),
        runway_url=get("MEDIA_PIPELINE_RUNWAY_URL").rstrip("/"),
        stability_api_key=get("MEDIA_PIPELINE_STABILITY_API_KEY"),
        stability_url=get("MEDIA_PIPELINE_STABILITY_URL").rstrip("/"),
        generator_download_hosts=tuple(
            h.strip().lower() for h in get("MEDIA_PIPELINE_GENERATOR_DOWNLOAD_HOSTS").split(",") if h.strip()
        ),
        generator_request_timeout=float(get("MEDIA_PIPELINE_GENERATOR_REQUEST_TIMEOUT")),
        generator_timeout=float(get("MEDIA_PIPELINE_GENERATOR_TIMEOUT")),
        storage=_storage(get),
        metrics_token=get("MEDIA_PIPELINE_METRICS_TOKEN"),
    )


def _storage(get: Callable[[str], str]) -> StorageSettings:
    backend = get("MEDIA_PIPELINE_STORAGE").strip().lower()
    if backend not in ("local", "s3"):
        raise ValueError(f"MEDIA_PIPELINE_STORAGE must be local or s3, not {backend!r}")
    bucket = get("MEDIA_PIPELINE_S3_BUCKET").strip()
    if backend == "s3" and not bucket:
        raise ValueError("MEDIA_PIPELINE_STORAGE=s3 needs a bucket: set MEDIA_PIPELINE_S3_BUCKET")
    return StorageSettings(
        backend=backend,
        s3_endpoint_url=get("MEDIA_PIPELINE_S3_ENDPOINT_URL").strip().rstrip("/"),
        s3_bucket=bucket,
        s3_region=get("MEDIA_PIPELINE_S3_REGION").strip(),
        s3_access_key=get("MEDIA_PIPELINE_S3_ACCESS_KEY"),
        s3_secret_key=get("MEDIA_PIPELINE_S3_SECRET_KEY"),
        s3_prefix=get("MEDIA_PIPELINE_S3_PREFIX").strip(),
    )


EXECUTORS = ("in_process", "multiprocess", "celery")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    text = value.strip().lower().replace("-", "_")
    if text not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return text


def _names(name: str, value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    if not names:
        raise ValueError(f"{name} must name at least one queue, such as dagster,ffmpeg,generators")
    return names


def shared_state_problems(settings: Settings) -> list[str]:
    """Why these settings cannot run steps on several machines: each a sentence naming the
    setting to change. Celery workers anywhere read and write the same databases and files, so
    none of them may be local to one machine."""
    problems = []
    if settings.database_url.startswith("sqlite"):
        problems.append(
            "the domain database is a SQLite file only this machine can open: set MEDIA_PIPELINE_DATABASE_URL "
            "to a Postgres URL (postgresql+psycopg://user:password@host:5432/db)"
        )
    if not settings.dagster_postgres_url:
        problems.append(
            "Dagster's storage is SQLite files only this machine can open: set MEDIA_PIPELINE_DAGSTER_POSTGRES_URL "
            "to a Postgres URL (postgresql+psycopg2://user:password@host:5432/db)"
        )
    if not settings.artifacts_shared and settings.storage.backend != "s3":
        problems.append(
            f"the artifact store is a local folder ({settings.artifact_root}): mount a folder every machine sees at "
            "the same path there and set MEDIA_PIPELINE_ARTIFACTS_SHARED=true (or use MEDIA_PIPELINE_STORAGE=s3)"
        )
    return problems


def _positive(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ValueError(f"{name} must be a positive whole number, not {value!r}")
    return number


def _flag(name: str, get: Callable[[str], str]) -> bool:
    value = get(name)
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


def flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def export_defaults(env: dict[str, str] | None = None) -> None:
    """Write every unset setting's default into the environment.

    Dagster resources read their configuration through `dg.EnvVar`, which has no default of
    its own; exporting the defaults makes `dagster dev`, `media-pipeline up` and tests resolve
    the same values and lets the Dagster UI show where each value came from.
    """
    target = os.environ if env is None else env
    for setting in SETTINGS:
        if not target.get(setting.name):
            target[setting.name] = _raw(setting.name, target)
