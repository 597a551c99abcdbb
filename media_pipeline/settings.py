"""Every setting the pipeline reads, in one place: one pydantic-settings model.

Configuration is environment variables only, so the Dagster code location, the daemon, the
API and the CLI all see the same values. Each has a default that makes an embedded,
single-workstation setup work with nothing installed: SQLite databases and an artifact folder
under the home folder. Each value is typed and validated once, when the settings are loaded;
a bad one is a `SettingsError` naming the variable and what it accepts. Loading never writes
the environment.

Adding a setting: one field in its group below, with `description` (the README's configuration
table is generated from the fields: `python -m media_pipeline.settings`, and a test compares).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from media_pipeline.core.ffmpeg import X264_CRF_MAX, X264_CRF_MIN, X264_PRESETS, X264Preset
from media_pipeline.core.timecode import RateError, parse_rate

ENV_PREFIX = "MEDIA_PIPELINE_"


class SettingsError(ValueError):
    """A variable's value cannot be used; the message names each bad variable and what it accepts."""


@dataclass(frozen=True)
class Accepts:
    """What a kind of value accepts, in the words of the error that refuses a bad one."""

    text: str


def _split_paths(value: object) -> object:
    if isinstance(value, str):
        return tuple(Path(p).expanduser().resolve() for p in value.split(os.pathsep) if p.strip())
    return value


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _rate(value: str) -> str:
    try:
        parse_rate(value)
    except RateError:
        raise ValueError("not a frame rate") from None
    return value.strip()


def _at_least_one(value: int) -> int:
    return max(1, value)


def _http_url(value: str) -> str:
    if value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL")
    return value.rstrip("/")


def _database_url(value: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(value)
    except ArgumentError:
        raise ValueError("not a database URL") from None
    return value


def _postgres_url(value: str) -> str:
    if value and not urlsplit(value).scheme.startswith("postgres"):
        raise ValueError("not a Postgres URL")
    return _database_url(value) if value else value


# The kinds of values, each with the sentence its errors use.
Port = Annotated[int, Accepts("a port number from 1 to 65535"), Field(ge=1, le=65535)]
PositiveInt = Annotated[int, Accepts("a positive whole number"), Field(ge=1)]
# Worker and item counts read below 1 as 1: a run always has one ffmpeg, a timeline one item.
AtLeastOne = Annotated[int, Accepts("a whole number"), AfterValidator(_at_least_one)]
Seconds = Annotated[float, Accepts("a number of seconds, 0 or more"), Field(ge=0)]
Flag = Annotated[bool, Accepts("true or false (also 1/0, yes/no, on/off)")]
Rate = Annotated[str, Accepts("a frame rate such as 24, 25, 23.976, 29.97 or 30000/1001"), AfterValidator(_rate)]
# `NoDecode`: a list is `:`- or `,`-separated text, not the JSON pydantic-settings expects by default.
PathList = Annotated[
    tuple[Path, ...], Accepts(f"folders separated by `{os.pathsep}`"), NoDecode, BeforeValidator(_split_paths)
]
CommaList = Annotated[tuple[str, ...], Accepts("comma-separated values"), NoDecode, BeforeValidator(_split_commas)]
HttpUrl = Annotated[str, Accepts("empty or an http(s) URL such as http://127.0.0.1:8000"), AfterValidator(_http_url)]
DatabaseUrl = Annotated[
    str,
    Accepts("a SQLAlchemy URL such as sqlite:///path/to.db or postgresql+psycopg://user@host/db"),
    AfterValidator(_database_url),
]
PostgresUrl = Annotated[
    str, Accepts("empty or a Postgres URL such as postgresql://user@host:5432/db"), AfterValidator(_postgres_url)
]
Preset = Annotated[X264Preset, Accepts("an x264 preset: " + ", ".join(X264_PRESETS))]
Resolution = Annotated[str, Accepts("WIDTHxHEIGHT such as 1920x1080"), Field(pattern=r"^\d{2,5}x\d{2,5}$")]
Loudness = Annotated[float, Accepts("LUFS between -70 and -5"), Field(ge=-70, le=-5)]
Crf = Annotated[
    int, Accepts(f"an H.264 CRF from {X264_CRF_MIN} to {X264_CRF_MAX}"), Field(ge=X264_CRF_MIN, le=X264_CRF_MAX)
]
StorageBackend = Annotated[
    Literal["local", "s3"],
    Accepts("local or s3"),
    BeforeValidator(lambda v: v.strip().lower() if isinstance(v, str) else v),
]
Stripped = Annotated[str, BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v)]
EXECUTORS = ("in_process", "multiprocess", "celery")
Executor = Annotated[
    Literal[EXECUTORS],  # type: ignore[valid-type]
    Accepts("one of " + ", ".join(EXECUTORS)),
    BeforeValidator(lambda v: v.strip().lower().replace("-", "_") if isinstance(v, str) else v),
]
QueueList = Annotated[
    tuple[str, ...],
    Accepts("at least one queue name, such as dagster,ffmpeg,generators"),
    NoDecode,
    BeforeValidator(lambda v: tuple(dict.fromkeys(_split_commas(v))) if isinstance(v, str) else v),
    Field(min_length=1),
]


def _home_default(template: str, description: str) -> Any:
    """A default under the home folder: `template` with `{home}` filled in when the settings load."""
    return Field(None, validate_default=True, description=description, json_schema_extra={"template": template})


# Read from these as they are: an empty value still means the default, except here.
_EMPTY_IS_A_VALUE = {"MEDIA_PIPELINE_WATCH_DIRS"}
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("media_pipeline_settings_environ", default=None)


class _Environment(EnvSettingsSource):
    """The process environment, or the mapping given to `load_settings`; empty values are unset."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _ENVIRON.get()
        environ = os.environ if environ is None else environ
        kept = {k: v for k, v in environ.items() if v != "" or k.upper() in _EMPTY_IS_A_VALUE}
        return parse_env_vars(kept, self.case_sensitive, False, self.env_parse_none_str)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    # -- home and storage ------------------------------------------------------------------------
    home: Path = Field(
        Path("./.media_pipeline"),
        json_schema_extra={"shown": "`./.media_pipeline`"},
        description="Home folder: databases, artifacts, watch folder, Dagster home (`<home>/dagster`), logs "
        "(`<home>/logs`).",
    )
    database_url: DatabaseUrl = _home_default(
        "sqlite:///{home}/media_pipeline.db",
        "Domain database (SQLAlchemy URL); `postgresql+psycopg://user@host/db` for Postgres.",
    )
    dagster_postgres_url: PostgresUrl = Field(
        "", description="Dagster's instance storage on Postgres; empty: SQLite files under `<home>/dagster`."
    )
    artifact_root: Path = _home_default("{home}/artifacts", "Where every produced file is written.")
    # Dagster's own variable, read here only: where the API finds the instance config.
    dagster_home_var: Path | None = Field(
        None,
        validation_alias="DAGSTER_HOME",
        description="Dagster's instance folder. `media-pipeline up` sets it to `<home>/dagster` and writes the "
        "instance config there (`dagster.yaml` at the repo root is the same file, for `dagster dev`).",
        json_schema_extra={"template": "{home}/dagster"},
    )

    # -- watch folders and media -----------------------------------------------------------------
    watch_dirs: PathList = _home_default(
        "{home}/watch", f"Watched folders, `{os.pathsep}`-separated; one sensor each. Set but empty: no sensors."
    )
    media_roots: PathList = _home_default(
        "{home}/media",
        f"The only folders media may be read from (the watch folders are always added), `{os.pathsep}`-separated; "
        "also searched by file name for media whose recorded path is not inside them.",
    )
    edl_rate: Rate = Field(
        "24",
        description="Frame rate for EDLs dropped into watch folders without a `watch.json` rate: `25`, `23.976`, "
        "`29.97`, `30000/1001`, ...",
    )
    sensor_interval: PositiveInt = Field(5, description="Seconds between watch-folder sensor evaluations.")
    settle_seconds: Seconds = Field(2.0, description="A dropped file is published once unchanged for this long.")

    # -- API and services ------------------------------------------------------------------------
    api_token: str = Field(
        "",
        description="Token for the API's `/v1` routes. Empty: `up` generates one, keeps it in `<home>/api_token` "
        "and prints it.",
    )
    metrics_token: str = Field(
        "",
        description="Bearer token Prometheus sends to `GET /metrics` (the API token is accepted too). Empty: "
        "`/metrics` answers loopback clients only (see [Metrics](#metrics)).",
    )
    ui_port: Port = Field(
        3000, description="Dagster webserver port, on loopback only; the UI is reached through the API at `/dagster/`."
    )
    api_port: Port = Field(8000, description="API port.")
    host: str = Field("127.0.0.1", min_length=1, description="Interface the webserver and API listen on.")
    api_url: HttpUrl = Field(
        "",
        description="API the command line (`publish`, `jobs`, `export`) talks to; empty: `http://<host>:<api port>`.",
    )
    cors_origins: CommaList = Field((), description="Comma-separated origins allowed by CORS; empty: no CORS headers.")
    max_upload_bytes: PositiveInt = Field(
        50 * 1024 * 1024,
        description="Largest timeline upload the API accepts (413 above it), and largest file a watch folder reads.",
        json_schema_extra={"shown": "`52428800` (50 MiB)"},
    )

    # -- runs and ffmpeg -------------------------------------------------------------------------
    ffmpeg_concurrency: AtLeastOne = Field(
        default_factory=lambda: os.cpu_count() or 2,
        description="ffmpeg processes one run starts at once (at least 1).",
        json_schema_extra={"shown": "CPU count"},
    )
    max_concurrent_runs: AtLeastOne = Field(4, description="Runs the queued run coordinator starts at once.")

    # -- timeline and media limits ---------------------------------------------------------------
    max_timeline_items: AtLeastOne = Field(
        20_000, description="Most items (clips, gaps, transitions, tracks; EDL events) a timeline may hold."
    )
    max_timeline_depth: AtLeastOne = Field(32, description="Deepest nesting of tracks and stacks a timeline may have.")
    max_pixels: PositiveInt = Field(
        100_000_000,
        description="Largest picture (width x height) read from a still, sequence frame or movie, checked from its "
        "header before anything is decoded; larger media is a missing shot saying so.",
        json_schema_extra={"shown": "`100000000` (100 MP)"},
    )

    # -- webhooks --------------------------------------------------------------------------------
    webhook_secret: str = Field(
        "",
        description="Key of the `X-Signature` HMAC-SHA256 on webhook deliveries (API and Dagster code location "
        "alike). Empty: a request with a `callback_url` is refused (422).",
    )
    webhook_allow_private: Flag = Field(
        False,
        description="`true`: callback URLs may point at loopback, private and link-local addresses (tests, one-host "
        "setups).",
    )

    # -- slideshows: what a render uses for each option it does not name -------------------------
    slideshow_fps: Rate = Field(
        "30", description="Slideshow frame rate when a render names none (`25`, `30`, `30000/1001`)."
    )
    slideshow_min_shot: Seconds = Field(2.5, description="Shortest slideshow scene, seconds (`minShot`).")
    slideshow_max_shot: Seconds = Field(8.0, description="Longest slideshow scene, seconds (`maxShot`).")
    slideshow_xfade: Seconds = Field(0.5, description="Crossfade between slideshow scenes, seconds (`xfade`).")
    slideshow_crf: Crf = Field(18, description="H.264 CRF of slideshow renders.")
    slideshow_preset: Preset = Field("medium", description="x264 preset of slideshow renders.")
    slideshow_resolution: Resolution = Field("1920x1080", description="Slideshow output size.")
    slideshow_loudness: Loudness = Field(-16.0, description="Slideshow loudness target, LUFS integrated.")
    slideshow_max_pixels: PositiveInt = Field(
        50_000_000, description="Largest slideshow image (width x height); larger uploads are refused."
    )

    # -- frame extraction ------------------------------------------------------------------------
    max_videos_per_request: AtLeastOne = Field(
        100, description="Most videos one frame extraction request may hold (422 above it)."
    )
    fetch_allow_private: Flag = Field(
        False,
        description="`true`: extraction may download from loopback, private and link-local addresses (refused "
        "otherwise, redirects included).",
    )
    fetch_max_bytes: PositiveInt = Field(
        2 * 1024**3,
        description="Largest video an extraction item downloads.",
        json_schema_extra={"shown": "`2147483648` (2 GiB)"},
    )
    fetch_timeout: PositiveInt = Field(300, description="Seconds one extraction download may take.")
    extraction_item_timeout: PositiveInt = Field(
        600, description="Seconds one extraction item may spend decoding before it fails."
    )

    # -- executors and workers (Scaling out) ---------------------------------------------------
    executor: Executor = Field(
        "in_process",
        description="How runs execute their steps: `in_process` (all in the run worker's process), `multiprocess` "
        "(a process per step, on the run worker's machine) or `celery` (each step a Celery task for "
        "`media-pipeline worker` processes on any machine; see *Scaling out*).",
    )
    celery_broker: str = Field(
        "pyamqp://guest:guest@127.0.0.1:5672//",
        description="Celery broker (`celery` mode): RabbitMQ `amqp://user:password@host:5672//` or Redis "
        "`redis://host:6379/0`.",
    )
    celery_backend: str = Field(
        "rpc://",
        description="Celery result backend (`celery` mode): `rpc://` (results come back over the broker) or "
        "`redis://host:6379/1`.",
    )
    celery_queue_prefix: Stripped = Field(
        "",
        description="Put before every queue name (`<prefix>ffmpeg`), so several deployments (or test runs) share "
        "one broker.",
    )
    worker_queues: QueueList = Field(
        ("dagster", "ffmpeg", "generators"),
        description="Queues `media-pipeline worker` consumes without `--queues`.",
    )
    artifacts_shared: Flag = Field(
        False,
        description="`true`: the artifact root is a folder every machine mounts at the same path (NFS, SMB, a "
        "cluster file system); `celery` mode refuses to start without it (or an S3 store).",
    )
    chunk_segments: Annotated[int | None, Accepts("empty or a positive whole number"), Field(ge=1)] = Field(
        None,
        description="Segments each chunk step of a final video encodes. Empty: all in one step with the "
        "`in_process` executor (no slower than before), 8 with the others, so chunks spread over workers.",
    )
    host_id: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        description="This machine's name in the `media_pipeline/host` run tag; the run reaper judges only runs "
        "orchestrated on its own host id.",
        json_schema_extra={"shown": "the host name"},
    )

    # -- media library ---------------------------------------------------------------------------
    library_max_bytes: PositiveInt = Field(
        2 * 1024**3,
        description="Largest media library upload (bytes); larger is a 413.",
        json_schema_extra={"shown": "`2147483648` (2 GiB)"},
    )
    library_max_pixels: PositiveInt = Field(
        50_000_000, description="Largest picture (width x height) the library accepts; larger is a 422."
    )
    library_max_duration: PositiveInt = Field(
        3600, description="Longest video the library accepts, seconds; longer is a 422."
    )
    library_inline_pixels: PositiveInt = Field(
        16_000_000,
        description="Image edits of pictures up to this size answer inline (200); larger ones run as a job (202).",
    )

    # -- compositions: generators --------------------------------------------------------------
    runway_api_key: str = Field(
        "",
        description="Runway API key for the `runway` generator. Empty: it is listed as unavailable and a render that "
        "needs it fails.",
    )
    runway_url: HttpUrl = Field(
        "https://api.dev.runwayml.com", description="Runway API base URL (the key is sent to this host only)."
    )
    stability_api_key: str = Field(
        "", description="Stability API key for the `stability` generator. Empty: unavailable."
    )
    stability_url: HttpUrl = Field("https://api.stability.ai", description="Stability API base URL.")
    generator_download_hosts: CommaList = Field(
        (),
        description="Comma-separated hosts, besides a provider's API host, its clips may be downloaded from (its CDN).",
    )
    generator_request_timeout: Seconds = Field(
        60.0, description="Seconds one request to a generator's provider may take."
    )
    generator_timeout: Seconds = Field(
        1800.0, description="Seconds one segment's generation may take, polling included."
    )

    # -- artifact storage (`settings.storage`) -------------------------------------------------
    storage_backend: StorageBackend = Field(
        "local",
        validation_alias="MEDIA_PIPELINE_STORAGE",
        description="Where finished artifacts are kept: `local` (the artifact root is the store) or `s3` (an "
        "S3-compatible bucket; the artifact root is then each machine's working copy and cache). See *Artifact "
        "storage*.",
    )
    s3_endpoint_url: HttpUrl = Field("", description="S3 endpoint, e.g. `http://minio:9000`; empty: AWS S3 itself.")
    s3_bucket: Stripped = Field(
        "",
        description="Bucket the artifacts go to; required with `MEDIA_PIPELINE_STORAGE=s3` (every process refuses to "
        "start without it). It must exist.",
    )
    s3_region: Stripped = Field(
        "us-east-1", description="Region of the bucket (signatures name it; MinIO accepts `us-east-1`)."
    )
    s3_access_key: str = Field(
        "", description="Access key id; empty: boto3's own lookup (`AWS_*` variables, profile, instance role)."
    )
    s3_secret_key: str = Field("", description="Secret access key (never logged or shown in errors).")
    s3_prefix: Stripped = Field(
        "",
        description="Key prefix inside the bucket (`site-a` stores `site-a/cuts/...`); empty: keys start at the "
        "bucket's top.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _Environment(settings_cls))

    @field_validator("database_url", "artifact_root", "watch_dirs", "media_roots", mode="before")
    @classmethod
    def _under_home(cls, value: object, info: ValidationInfo) -> object:
        if value is None and "home" in info.data:
            template = cls.model_fields[info.field_name].json_schema_extra["template"]  # type: ignore[index]
            return template.format(home=info.data["home"])
        return value

    @field_validator("home", "artifact_root", "dagster_home_var")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @field_validator("media_roots")
    @classmethod
    def _with_watch_dirs(cls, value: tuple[Path, ...], info: ValidationInfo) -> tuple[Path, ...]:
        # Media next to a dropped timeline (relative paths) is read from its watch folder.
        return tuple(dict.fromkeys([*value, *info.data.get("watch_dirs", ())]))

    @field_validator("generator_download_hosts")
    @classmethod
    def _lower_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(host.lower() for host in value)

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> Settings:
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ValueError("MEDIA_PIPELINE_STORAGE=s3 needs a bucket: set MEDIA_PIPELINE_S3_BUCKET")
        return self

    @property
    def dagster_home(self) -> Path:
        """Where `media-pipeline up` keeps the Dagster instance: `<home>/dagster`."""
        return self.home / "dagster"

    @property
    def dagster_instance_home(self) -> Path:
        """The Dagster instance this process uses: $DAGSTER_HOME, else `<home>/dagster`."""
        return self.dagster_home_var or self.dagster_home

    @property
    def slideshow(self) -> SlideshowDefaults:
        return SlideshowDefaults(
            fps=self.slideshow_fps,
            min_shot=self.slideshow_min_shot,
            max_shot=self.slideshow_max_shot,
            xfade=self.slideshow_xfade,
            crf=self.slideshow_crf,
            preset=self.slideshow_preset,
            resolution=self.slideshow_resolution,
            loudness=self.slideshow_loudness,
            max_pixels=self.slideshow_max_pixels,
        )

    @property
    def storage(self) -> StorageSettings:
        return StorageSettings(
            backend=self.storage_backend,
            s3_endpoint_url=self.s3_endpoint_url,
            s3_bucket=self.s3_bucket,
            s3_region=self.s3_region,
            s3_access_key=self.s3_access_key,
            s3_secret_key=self.s3_secret_key,
            s3_prefix=self.s3_prefix,
        )

    def environment(self) -> dict[str, str]:
        """Every setting as the variable that sets it: for child processes that must see these values."""
        fields = type(self).model_fields
        return {
            # None (CHUNK_SEGMENTS unset) is an empty value, read back as unset; an empty DAGSTER_HOME
            # would be Dagster's to misread, so that one is left out.
            variable(name, field.validation_alias): "" if value is None else _as_text(name, value)
            for name, field in fields.items()
            if (value := getattr(self, name)) is not None or name != "dagster_home_var"
        }


_COMMA_SEPARATED = {"cors_origins", "generator_download_hosts", "worker_queues"}


def _as_text(name: str, value: object) -> str:
    """`value` as the variable for field `name` would spell it."""
    if isinstance(value, tuple):
        return ("," if name in _COMMA_SEPARATED else os.pathsep).join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 2, as the README and Compose write it, not 2.0
    return str(value)


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


def variable(field_name: str, alias: object = None) -> str:
    return alias if isinstance(alias, str) else ENV_PREFIX + field_name.upper()


VARIABLES: tuple[str, ...] = tuple(variable(n, f.validation_alias) for n, f in Settings.model_fields.items())
# Each variable's default as text, where it depends on neither the home folder nor the host.
DEFAULTS: dict[str, str] = {
    variable(n, f.validation_alias): _as_text(n, f.default)
    for n, f in Settings.model_fields.items()
    if f.default_factory is None and f.default is not None and not f.validate_default
}


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


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The settings from `env` (default: the process environment), validated; SettingsError if any is bad."""
    token = _ENVIRON.set(env)
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(_sentences(exc)) from None
    finally:
        _ENVIRON.reset(token)


def _sentences(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        # A field read through an alias (DAGSTER_HOME, MEDIA_PIPELINE_STORAGE) is named by its alias.
        name = next((n for n, f in Settings.model_fields.items() if f.validation_alias == name), name)
        field = Settings.model_fields.get(name)
        if field is None:
            # A check across fields (model_validator): its own sentence, without pydantic's "Value error, ".
            cause = (error.get("ctx") or {}).get("error")
            lines.append(str(cause) if cause is not None else error["msg"])
            continue
        accepts = next((m.text for m in field.metadata if isinstance(m, Accepts)), None)
        value = error.get("input")
        lines.append(f"{variable(name, field.validation_alias)} must be {accepts or error['msg']}, not {value!r}")
    return "; ".join(lines)


def markdown_table() -> str:
    """The README's configuration table, from the fields."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "shown" in extra:
            shown = str(extra["shown"])
        elif "template" in extra:
            shown = "`" + str(extra["template"]).replace("{home}", "<home>") + "`"
        elif field.default in ("", (), None):
            shown = "empty"
        elif isinstance(field.default, bool):
            shown = f"`{str(field.default).lower()}`"
        elif isinstance(field.default, float) and field.default.is_integer():
            shown = f"`{int(field.default)}`"
        else:
            shown = f"`{field.default}`"
        rows.append(f"| `{variable(name, field.validation_alias)}` | {shown} | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.stdout.write(markdown_table() + "\n")
