"""One sensor per watched folder: a timeline file dropped in becomes a new cut version.

- A file is published only once it is stable: the same size and mtime on two evaluations and
  untouched for the settle time, so a file still being copied is never read half-written.
- Content, not name, decides duplicates: a file whose sha-256 was already published in the
  project is skipped, whatever it is called.
- The cursor records each handled file's (size, mtime) and the files still settling; see
  WatchCursor for why not a bare high-water mtime. A file rewritten in place is seen again.

Files directly in the folder go to the folder's project (`watch.json` "project", else
"default"); files in a subfolder go to the project named after the subfolder. `watch.json` in
the folder or subfolder may also set "rate" (for EDLs), "media_roots" and
"ignore_timecode_mismatch".

Dropped files are untrusted: only regular files are read (see `intake`), up to the upload size
limit. Whatever is not published (a link, a FIFO, a folder named like a timeline, a file too
large, a bad watch.json) is recorded as a watch event the API lists, logged, and named in the
sensor's skip reason in the Dagster UI.
"""

import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from media_pipeline.editorial import watch_events
from media_pipeline.editorial.intake import Refused, copy_untrusted, kind_of, not_regular, read_small, too_large
from media_pipeline.editorial.jobs import ingest_cut_job
from media_pipeline.editorial.media import MediaRootError, confine_roots
from media_pipeline.editorial.partitions import cut_versions
from media_pipeline.editorial.publish import publish_cut
from media_pipeline.editorial.timeline import MAX_RATE, ReadOptions, readable_suffixes, user_rate
from media_pipeline.resources import ArtifactStore, DatabaseResource

FOLDER_SETTINGS = "watch.json"
FOLDER_SETTINGS_MAX_BYTES = 64 * 1024
EVALUATION_BUDGET_SECONDS = 40  # Dagster times a sensor evaluation out at 60 s


@dataclass
class WatchCursor:
    """What the sensor has handled, by file identity (path, size, mtime), never by wall clock.

    A bare high-water mtime would skip files copied in with an older, preserved mtime
    (`cp -p`, `rsync -t`, unzip); recording each present file's (size, mtime) cannot skip one,
    and stays as small as the folder (entries for removed files are dropped).
    """

    handled: dict[str, list[int]] = field(default_factory=dict)  # path -> [size, mtime_ns]
    settling: dict[str, list[int]] = field(default_factory=dict)  # path -> [size, mtime_ns, observed_ns]

    @classmethod
    def parse(cls, text: str | None) -> "WatchCursor":
        if not text:
            return cls()
        data = json.loads(text)
        return cls(data.get("handled", {}), data.get("settling", {}))

    def dump(self) -> str:
        return json.dumps({"handled": self.handled, "settling": self.settling}, sort_keys=True)

    def forget_missing(self, present: dict[str, tuple[int, int]]) -> None:
        self.handled = {path: seen for path, seen in self.handled.items() if path in present}
        self.settling = {path: seen for path, seen in self.settling.items() if path in present}

    def is_new(self, path: str, size: int, mtime_ns: int) -> bool:
        return self.handled.get(path) != [size, mtime_ns]

    def handle(self, path: str, size: int, mtime_ns: int) -> None:
        self.settling.pop(path, None)
        self.handled[path] = [size, mtime_ns]


@dataclass(frozen=True)
class Entry:
    size: int
    mtime_ns: int
    kind: str  # "regular file", "symbolic link", "FIFO (named pipe)", "folder", ...


def scan(folder: Path) -> dict[str, Entry]:
    """Everything under `folder` named like a timeline, by path, as `lstat` sees it (links are
    never followed, folders that are links are not entered). Hidden and partial files are skipped."""
    suffixes = {f".{s}" for s in readable_suffixes()}
    found: dict[str, Entry] = {}

    def named_like_a_timeline(name: str) -> bool:
        return not name.startswith(".") and name != FOLDER_SETTINGS and Path(name).suffix.lower() in suffixes

    for root, dirs, files in os.walk(folder):
        # A folder named like a timeline (an .otiod bundle, or a trap) is reported, not entered.
        for name in [*dirs, *files]:
            if not named_like_a_timeline(name):
                continue
            path = Path(root) / name
            try:
                info = path.lstat()
            except FileNotFoundError:  # removed while we looked
                continue
            found[str(path)] = Entry(info.st_size, info.st_mtime_ns, kind_of(info.st_mode))
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not named_like_a_timeline(d))
    return found


def folder_settings(folder: Path, path: Path, allowed_media_roots: Sequence[Path] = ()) -> dict[str, Any]:
    """Settings for a dropped file: the watch folder's watch.json, overlaid by its subfolder's.

    Raises Refused with a sentence when a watch.json is not a small regular JSON object of the
    known keys and types.
    """
    settings: dict[str, Any] = {"project": "default"}
    relative = path.relative_to(folder)
    layers = [folder]
    if len(relative.parts) > 1:
        settings["project"] = relative.parts[0]
        layers.append(folder / relative.parts[0])
    for layer in layers:
        settings_file = layer / FOLDER_SETTINGS
        try:
            mode = settings_file.lstat().st_mode
        except FileNotFoundError:
            continue
        where = settings_file.relative_to(folder).as_posix()
        try:
            raw = read_small(settings_file, max_bytes=FOLDER_SETTINGS_MAX_BYTES) if stat.S_ISREG(mode) else None
            if raw is None:
                raise not_regular(kind_of(mode))
            layer_settings = json.loads(raw)
        except Refused as exc:
            raise Refused(f"its {where} was not read: {exc}") from None
        except ValueError as exc:
            raise Refused(f"its {where} is not valid JSON ({exc}); fix it and drop the file again") from None
        settings.update(checked_settings(layer_settings, where, allowed_media_roots))
    return settings


def checked_settings(data: object, where: str, allowed_media_roots: Sequence[Path]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise Refused(f'its {where} must be a JSON object such as {{"rate": 25}}')
    known = {"project", "rate", "media_roots", "ignore_timecode_mismatch"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise Refused(f"its {where} has unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
    if "project" in data and not (isinstance(data["project"], str) and 0 < len(data["project"]) <= 200):
        raise Refused(f'its {where} "project" must be a name of 1 to 200 characters')
    rate = data.get("rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= MAX_RATE):
        raise Refused(f'its {where} "rate" must be a frame rate above 0 and at most {MAX_RATE:g}, such as 25')
    if "ignore_timecode_mismatch" in data and not isinstance(data["ignore_timecode_mismatch"], bool):
        raise Refused(f'its {where} "ignore_timecode_mismatch" must be true or false')
    if "media_roots" in data:
        roots = data["media_roots"]
        if not isinstance(roots, list) or not all(isinstance(root, str) for root in roots):
            raise Refused(f'its {where} "media_roots" must be a list of absolute folder paths')
        try:
            data = {**data, "media_roots": [str(root) for root in confine_roots(roots, allowed_media_roots)]}
        except MediaRootError as exc:
            raise Refused(f'its {where} "media_roots" was refused: {exc}') from None
    return data


def evaluate(
    context: dg.SensorEvaluationContext,
    folder: Path,
    database: DatabaseResource,
    artifacts: ArtifactStore,
    *,
    settle_seconds: float,
    default_edl_rate: float | str,
    max_bytes: int,
    media_roots: Sequence[Path] = (),
    sensor_name: str = "",
) -> dg.SensorResult | dg.SkipReason:
    if not folder.is_dir():
        return dg.SkipReason(f"watch folder {folder} does not exist; create it or fix MEDIA_PIPELINE_WATCH_DIRS")
    cursor = WatchCursor.parse(context.cursor)
    files = scan(folder)
    cursor.forget_missing({path: (entry.size, entry.mtime_ns) for path, entry in files.items()})
    candidates = sorted(
        (entry.mtime_ns, path) for path, entry in files.items() if cursor.is_new(path, entry.size, entry.mtime_ns)
    )
    deadline = time.monotonic() + EVALUATION_BUDGET_SECONDS
    run_requests: list[dg.RunRequest] = []
    new_keys: list[str] = []
    not_published: list[str] = []
    now_ns = time.time_ns()

    def refuse(path: str, entry: Entry, outcome: str, reason: str) -> None:
        relative = Path(path).relative_to(folder).as_posix()
        watch_events.record(artifacts.root_path, sensor=sensor_name, file=relative, outcome=outcome, reason=reason)
        context.log.warning(f"{relative} was not published: {reason}")
        not_published.append(f"{relative}: {reason}")
        cursor.handle(path, entry.size, entry.mtime_ns)

    for mtime, path in candidates:
        if time.monotonic() > deadline:
            context.log.info("evaluation budget used; the remaining files are handled next time")
            break
        entry = files[path]
        if entry.kind != "regular file":  # nothing to wait for: refused as soon as seen
            refuse(path, entry, "skipped", str(not_regular(entry.kind)))
            continue
        # Stable means: unchanged since an observation at least `settle_seconds` ago. Measured
        # from our own observation, not the file's mtime, so a share with a skewed clock works.
        previous = cursor.settling.get(path)
        size = entry.size
        settled = (
            previous is not None and previous[:2] == [size, mtime] and now_ns - previous[2] >= settle_seconds * 1e9
        )
        if not settled:
            if previous is None or previous[:2] != [size, mtime]:
                cursor.settling[path] = [size, mtime, now_ns]
            continue
        if size > max_bytes:
            refuse(path, entry, "skipped", str(too_large(size, max_bytes)))
            continue
        try:
            published = publish_dropped(
                folder, Path(path), database, artifacts, default_edl_rate, max_bytes, media_roots
            )
        except Refused as exc:
            refuse(path, entry, "skipped", str(exc))
            continue
        except Exception as exc:  # one bad file must not stop the folder; the reason is recorded
            refuse(path, entry, "failed", f"it could not be published ({type(exc).__name__}); see the sensor's log")
            context.log.error(f"{path} was not published: {exc}")
            continue
        cursor.handle(path, size, mtime)
        if published is None:
            context.log.info(f"{path}: same content as an earlier cut version; skipped")
            continue
        new_keys.append(published)
        run_requests.append(
            dg.RunRequest(run_key=published, partition_key=published, tags={"media_pipeline/source": path})
        )
    skip_reason = None
    if not run_requests and not_published:
        skip_reason = f"{len(not_published)} file(s) not published: " + "; ".join(not_published[:20])
    return dg.SensorResult(
        run_requests=run_requests or None,
        dynamic_partitions_requests=[cut_versions.build_add_request(new_keys)] if new_keys else [],
        cursor=cursor.dump(),
        skip_reason=skip_reason,
    )


def publish_dropped(
    folder: Path,
    path: Path,
    database: DatabaseResource,
    artifacts: ArtifactStore,
    default_edl_rate: float | str,
    max_bytes: int,
    media_roots: Sequence[Path] = (),
) -> str | None:
    """Publish one dropped file; the new partition key, or None for a duplicate."""
    settings = folder_settings(folder, path, media_roots)
    options = ReadOptions(
        rate=user_rate(settings.get("rate") or default_edl_rate),
        ignore_timecode_mismatch=bool(settings.get("ignore_timecode_mismatch")),
    )
    # Published from a private copy read under the intake rules: what is hashed and stored is
    # what was checked, even if the dropped file is swapped for a link right after.
    with tempfile.TemporaryDirectory(prefix="mp-watch-") as tmp:
        snapshot = Path(tmp) / path.name
        copy_untrusted(path, snapshot, max_bytes=max_bytes)
        with database.session() as session:
            published = publish_cut(
                session,
                artifacts,
                project=str(settings["project"]),
                name=path.stem,
                source=snapshot,
                read_options=options,
                media_roots=[str(root) for root in settings.get("media_roots", [])],
                origin_dir=str(path.parent),
                dedupe=True,
            )
            return published.cut.partition_key if published.created else None


def watch_folder_sensor(
    folder: Path,
    *,
    interval_seconds: int,
    settle_seconds: float,
    default_edl_rate: float | str,
    max_bytes: int = 50 * 1024 * 1024,
    media_roots: Sequence[Path] = (),
) -> dg.SensorDefinition:
    name = "watch_" + (re.sub(r"[^A-Za-z0-9]+", "_", str(folder)).strip("_").lower() or "root")

    @dg.sensor(
        name=name[:120],
        job=ingest_cut_job,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Publishes timeline files dropped into {folder} as new cut versions and ingests them.",
    )
    def _sensor(
        context: dg.SensorEvaluationContext, database: DatabaseResource, artifacts: ArtifactStore
    ) -> dg.SensorResult | dg.SkipReason:
        return evaluate(
            context,
            folder,
            database,
            artifacts,
            settle_seconds=settle_seconds,
            default_edl_rate=default_edl_rate,
            max_bytes=max_bytes,
            media_roots=media_roots,
            sensor_name=name[:120],
        )

    return _sensor
