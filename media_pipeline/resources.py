"""External systems as Dagster resources: the domain database, the artifact store, ffmpeg."""

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import dagster as dg
from sqlalchemy.orm import Session

from media_pipeline import db
from media_pipeline.core import ffmpeg as media_ffmpeg

T = TypeVar("T")
R = TypeVar("R")


class DatabaseResource(dg.ConfigurableResource):
    """The domain database (projects, cuts, shots, renders, jobs); migrated on first use."""

    url: str

    @contextmanager
    def session(self) -> Iterator[Session]:
        db.migrate(self.url)
        with db.session_scope(self.url) as session:
            yield session


class PathOutsideRoot(ValueError):
    pass


class ArtifactStore(dg.ConfigurableResource):
    """Every produced file lives under `root`; paths handed out never escape it."""

    root: str

    @property
    def root_path(self) -> Path:
        return Path(self.root).expanduser().resolve()

    def path(self, relative: str | Path) -> Path:
        candidate = (self.root_path / relative).resolve()
        if not candidate.is_relative_to(self.root_path):
            raise PathOutsideRoot(f"{relative} is outside the artifact root")
        return candidate

    def relative(self, path: Path) -> str:
        return path.resolve().relative_to(self.root_path).as_posix()

    def cut_dir(self, partition_key: str) -> Path:
        return self.path(f"cuts/{partition_key}")


class FFmpegResource(dg.ConfigurableResource):
    """How many ffmpeg processes one step may run at once."""

    concurrency: int = 2

    def map_parallel(
        self, fn: Callable[[T], R], items: Iterable[T], on_done: Callable[[T, R | BaseException], None]
    ) -> None:
        """Run `fn` over `items` in at most `concurrency` threads (each drives one ffmpeg).

        Interrupted (the run is terminated: Dagster raises in this, the step's, thread), it
        kills every ffmpeg the items started, starts no queued item, and re-raises once the
        worker threads have let go (their partial outputs deleted), within seconds.
        """
        with media_ffmpeg.cancel_scope() as scope:

            def guarded(item: T) -> R:
                scope.check()  # a queued item whose turn comes after a cancel does nothing
                return fn(item)

            pool = ThreadPoolExecutor(max_workers=max(1, self.concurrency))
            futures: dict[Future[R], T] = {}
            try:
                for item in items:
                    futures[pool.submit(media_ffmpeg.run_in_scope(guarded), item)] = item
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        error = future.exception()
                        on_done(futures[future], error if error is not None else future.result())
            except BaseException:
                scope.cancel()
                for future in futures:
                    future.cancel()
                # Killed ffmpegs end at once; give their threads the moment to discard partials.
                wait(futures, timeout=10)
                raise
            finally:
                pool.shutdown(wait=False, cancel_futures=True)


class MediaSearchResource(dg.ConfigurableResource):
    """The folders media may be read from (`MEDIA_PIPELINE_MEDIA_ROOTS` and the watch folders),
    also searched by file name for media whose recorded path is not inside them."""

    media_roots: str = ""

    def allowed_roots(self) -> list[Path]:
        listed = [p for p in self.media_roots.split(os.pathsep) if p.strip()]
        return [Path(p).expanduser().resolve() for p in listed]
