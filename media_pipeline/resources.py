"""External systems as Dagster resources: the domain database, the artifact store, ffmpeg."""

import functools
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TypeVar

import dagster as dg
from pydantic import Field
from sqlalchemy.orm import Session

from media_pipeline import db
from media_pipeline.core import ffmpeg as media_ffmpeg
from media_pipeline.core.storage import (
    ArtifactStorage,
    LocalStorage,
    S3Config,
    S3Storage,
    StoredObject,
    confined_file,
)
from media_pipeline.settings import Settings

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
    """Every produced file: written under `root` (the working copy; paths handed out never escape
    it), kept by the storage backend once published.

    With `storage="local"` the root is the store. With `storage="s3"` each finished file is
    uploaded by `publish` and read back by `localize` / `iter_bytes` on any machine; the root is
    then a cache that may be emptied. Keys are paths relative to the root (`relative()`).
    """

    root: str
    storage: str = "local"  # local | s3
    s3_endpoint_url: str = ""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key: str = ""
    s3_secret_key: str = Field(default="", repr=False)  # never in a log line or an error
    s3_prefix: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> "ArtifactStore":
        s = settings.storage
        return cls(
            root=str(settings.artifact_root),
            storage=s.backend,
            s3_endpoint_url=s.s3_endpoint_url,
            s3_bucket=s.s3_bucket,
            s3_region=s.s3_region,
            s3_access_key=s.s3_access_key,
            s3_secret_key=s.s3_secret_key,
            s3_prefix=s.s3_prefix,
        )

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

    # -- the storage backend ------------------------------------------------------------------

    @property
    def backend(self) -> ArtifactStorage:
        return _backend(
            self.root_path,
            self.storage,
            S3Config(
                bucket=self.s3_bucket,
                endpoint_url=self.s3_endpoint_url,
                region=self.s3_region,
                access_key=self.s3_access_key,
                secret_key=self.s3_secret_key,
                prefix=self.s3_prefix,
            )
            if self.storage == "s3"
            else None,
        )

    def key(self, path_or_key: str | Path) -> str:
        """The store's key of a working-copy path (or a key, returned checked)."""
        return self.relative(self.path(path_or_key))

    def publish(self, *paths: str | Path) -> list[StoredObject]:
        """Declare finished files of the working copy done: the backend keeps them from now on.

        Call it once a file has its final name and content (after the atomic rename, at the end
        of a materialization). Local: nothing moves. S3: each file is uploaded.
        """
        stored = []
        for item in paths:
            local = self.path(item)
            stored.append(self.backend.put_file(self.relative(local), local))
        return stored

    def put_file(self, key: str, source: Path, content_type: str | None = None) -> StoredObject:
        """Store the complete file `source` (from anywhere, e.g. an upload's temporary file) under
        `key`, atomically; `source` is left alone. Local: copied into the root. S3: uploaded only
        (the working copy fills on `localize`)."""
        return self.backend.put_file(self.key(key), source, content_type)

    def stat(self, key: str) -> StoredObject | None:
        """What the store holds at `key` (size, mtime, etag, content type), or None."""
        return self.backend.stat(key)

    def exists(self, key: str) -> bool:
        return self.backend.exists(key)

    def iter_bytes(self, key: str, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        """The stored bytes of `key`, or a range of them, streamed from the backend."""
        return self.backend.iter_bytes(key, start, length)

    def list_objects(self, prefix: str) -> list[StoredObject]:
        """What the store holds under `prefix` (`slideshows/x/output/`), sorted by key."""
        return self.backend.list_objects(prefix)

    def localize(self, key: str | Path) -> Path:
        """A local path holding the stored file `key`: the working copy when it is there, else
        fetched from the backend into it. FileNotFoundError when neither has it."""
        key = self.key(key)
        local = confined_file(self.root_path, key)
        if local is not None:
            return local
        return self.backend.get_file(key, self.path(key))

    def open(self, key: str) -> BinaryIO:
        """The stored file `key` opened for reading (seekable: fetched into the working copy)."""
        return self.localize(key).open("rb")

    def delete(self, key: str) -> None:
        """Remove `key` from the store and from the working copy."""
        self.backend.delete(key)
        LocalStorage(self.root_path).delete(key)

    def check(self) -> str | None:
        """None when the store is usable, else a sentence (for health checks)."""
        local = LocalStorage(self.root_path).check()
        if local or self.storage == "local":
            return local
        return self.backend.check()


@functools.lru_cache(maxsize=16)
def _backend(root: Path, storage: str, s3: S3Config | None) -> ArtifactStorage:
    # One backend (one boto3 client, thread-safe) per configuration and process.
    if storage == "s3" and s3 is not None:
        return S3Storage(s3)
    if storage != "local":
        raise ValueError(f"unknown artifact storage {storage!r}: use local or s3")
    return LocalStorage(root)


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
