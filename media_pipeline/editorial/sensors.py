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
"""

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from media_pipeline.editorial.jobs import ingest_cut_job
from media_pipeline.editorial.partitions import cut_versions
from media_pipeline.editorial.publish import publish_cut
from media_pipeline.editorial.timeline import ReadOptions, readable_suffixes, user_rate
from media_pipeline.resources import ArtifactStore, DatabaseResource

FOLDER_SETTINGS = "watch.json"
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


def scan(folder: Path) -> dict[str, tuple[int, int]]:
    """Timeline files under `folder`: path -> (size, mtime_ns). Hidden and partial files are skipped."""
    suffixes = {f".{s}" for s in readable_suffixes()}
    found: dict[str, tuple[int, int]] = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or name == FOLDER_SETTINGS or Path(name).suffix.lower() not in suffixes:
                continue
            path = Path(root) / name
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed while we looked
                continue
            found[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return found


def folder_settings(folder: Path, path: Path) -> dict[str, Any]:
    """Settings for a dropped file: the watch folder's watch.json, overlaid by its subfolder's."""
    settings: dict[str, Any] = {"project": "default"}
    relative = path.relative_to(folder)
    layers = [folder]
    if len(relative.parts) > 1:
        settings["project"] = relative.parts[0]
        layers.append(folder / relative.parts[0])
    for layer in layers:
        settings_file = layer / FOLDER_SETTINGS
        if settings_file.is_file():
            settings.update(json.loads(settings_file.read_text()))
    return settings


def evaluate(
    context: dg.SensorEvaluationContext,
    folder: Path,
    database: DatabaseResource,
    artifacts: ArtifactStore,
    *,
    settle_seconds: float,
    default_edl_rate: float | str,
) -> dg.SensorResult | dg.SkipReason:
    if not folder.is_dir():
        return dg.SkipReason(f"watch folder {folder} does not exist; create it or fix MEDIA_PIPELINE_WATCH_DIRS")
    cursor = WatchCursor.parse(context.cursor)
    files = scan(folder)
    cursor.forget_missing(files)
    candidates = sorted((mtime, path) for path, (size, mtime) in files.items() if cursor.is_new(path, size, mtime))
    deadline = time.monotonic() + EVALUATION_BUDGET_SECONDS
    run_requests: list[dg.RunRequest] = []
    new_keys: list[str] = []
    now_ns = time.time_ns()
    for mtime, path in candidates:
        if time.monotonic() > deadline:
            context.log.info("evaluation budget used; the remaining files are handled next time")
            break
        size = files[path][0]
        # Stable means: unchanged since an observation at least `settle_seconds` ago. Measured
        # from our own observation, not the file's mtime, so a share with a skewed clock works.
        previous = cursor.settling.get(path)
        settled = (
            previous is not None and previous[:2] == [size, mtime] and now_ns - previous[2] >= settle_seconds * 1e9
        )
        if not settled:
            if previous is None or previous[:2] != [size, mtime]:
                cursor.settling[path] = [size, mtime, now_ns]
            continue
        try:
            published = publish_dropped(folder, Path(path), database, artifacts, default_edl_rate)
        except Exception as exc:  # a bad watch.json or an unreadable file must not stop the folder
            context.log.error(f"{path} was not published: {exc}")
            cursor.handle(path, size, mtime)
            continue
        cursor.handle(path, size, mtime)
        if published is None:
            context.log.info(f"{path}: same content as an earlier cut version; skipped")
            continue
        new_keys.append(published)
        run_requests.append(
            dg.RunRequest(run_key=published, partition_key=published, tags={"media_pipeline/source": path})
        )
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[cut_versions.build_add_request(new_keys)] if new_keys else [],
        cursor=cursor.dump(),
    )


def publish_dropped(
    folder: Path, path: Path, database: DatabaseResource, artifacts: ArtifactStore, default_edl_rate: float | str
) -> str | None:
    """Publish one dropped file; the new partition key, or None for a duplicate."""
    settings = folder_settings(folder, path)
    options = ReadOptions(
        rate=user_rate(settings.get("rate") or default_edl_rate),
        ignore_timecode_mismatch=bool(settings.get("ignore_timecode_mismatch")),
    )
    with database.session() as session:
        published = publish_cut(
            session,
            artifacts.root_path,
            project=str(settings["project"]),
            name=path.stem,
            source=path,
            read_options=options,
            media_roots=[str(root) for root in settings.get("media_roots", [])],
            origin_dir=str(path.parent),
            dedupe=True,
        )
        return published.cut.partition_key if published.created else None


def watch_folder_sensor(
    folder: Path, *, interval_seconds: int, settle_seconds: float, default_edl_rate: float | str
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
        )

    return _sensor
