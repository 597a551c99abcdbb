"""Library content in the artifact store, content-addressed: `library/sha256/ab/abcdef...`.

Every write goes through here and `ArtifactStore`, so the layout and the code are the same on
either backend: bytes land in the store's working copy (hashed as they are written: one read of
an upload), are renamed under their content key only once complete, and are then published
(local: nothing moves; S3: uploaded). Content already stored is not written again. Reads go
through `localize` (S3: fetched into the working copy when it is not there).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from media_pipeline.resources import ArtifactStore

PREFIX = "library/sha256"
INCOMING = "library/incoming"
CHUNK = 1 << 20


def key_for(sha256: str) -> str:
    return f"{PREFIX}/{sha256[:2]}/{sha256}"


class TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class Incoming:
    """Bytes being received: written to a hidden partial file while their sha-256 is computed.

    `write` hashes and writes in the caller's thread. `feed` (for the event loop) gathers the
    arriving chunks into blocks of `BLOCK` bytes and hashes and writes each on a worker thread
    while the next block arrives: hashing releases the GIL, so receiving, hashing and writing
    overlap instead of taking turns on one core. One block at a time is in flight, in order.
    """

    BLOCK = 1 << 20

    def __init__(self, store: LibraryStore, limit: int) -> None:
        self.store = store
        self.limit = limit
        self.path = store.artifacts.path(f"{INCOMING}/.upload-{uuid.uuid4().hex}.partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO | None = self.path.open("wb")
        self._hash = hashlib.sha256()
        self.size = 0
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._flight: Future[None] | None = None

    def _count(self, size: int) -> None:
        self.size += size
        if self.size > self.limit:
            self.discard()
            raise TooLarge(self.limit)

    def _absorb(self, chunks: list[bytes]) -> None:
        assert self._file is not None
        for chunk in chunks:
            self._hash.update(chunk)
        self._file.writelines(chunks)

    def write(self, chunk: bytes) -> None:
        self._settle()
        self._count(len(chunk))
        chunks, self._pending, self._pending_size = [*self._pending, chunk], [], 0  # fed bytes come first
        self._absorb(chunks)

    async def feed(self, chunk: bytes) -> None:
        """`write` for a coroutine: the block is hashed and written while the next is received."""
        self._count(len(chunk))
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= self.BLOCK:
            await self._dispatch()

    async def flush(self) -> None:
        """Every fed byte hashed and written."""
        await self._dispatch()
        await self._landed()

    async def _landed(self) -> None:
        if self._flight is not None:
            flight, self._flight = self._flight, None
            await asyncio.wrap_future(flight)

    async def _dispatch(self) -> None:
        await self._landed()  # the previous block first: bytes stay in order, memory bounded
        if self._pending:
            chunks, self._pending, self._pending_size = self._pending, [], 0
            self._flight = _WRITERS.submit(self._absorb, chunks)

    def _settle(self) -> None:
        # A block still being written (a failed upload): wait for it before the file is touched.
        if self._flight is not None:
            flight, self._flight = self._flight, None
            with contextlib.suppress(Exception):
                flight.result()

    def finish(self) -> str:
        """Close the partial file; its sha-256."""
        self._settle()
        if self._pending:
            self._absorb(self._pending)
            self._pending, self._pending_size = [], 0
        if self._file is not None:
            self._file.close()
            self._file = None
        return self._hash.hexdigest()

    def discard(self) -> None:
        self._settle()
        self._pending, self._pending_size = [], 0
        if self._file is not None:
            self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> Incoming:
        return self

    def __exit__(self, *exc: object) -> None:
        # Whatever was not committed is not kept.
        self.discard()


# Shared by every upload; each has at most one block in flight.
_WRITERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="library-incoming")


class LibraryStore:
    def __init__(self, artifacts: ArtifactStore) -> None:
        self.artifacts = artifacts

    def receive(self, limit: int) -> Incoming:
        return Incoming(self, limit)

    def commit(self, incoming: Incoming) -> str:
        """Move received bytes under their content key and publish them (nothing is written when that
        content is stored already); the key."""
        sha256 = incoming.finish()
        key = key_for(sha256)
        if self.artifacts.exists(key):
            incoming.discard()
            return key
        target = self.artifacts.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(incoming.path, target)
        self.artifacts.publish(key)
        return key

    def put_file(self, path: Path) -> tuple[str, int, str]:
        """Store a file made on this machine (an edit's output), moving it in; sha-256, size and key."""
        digest = hashlib.sha256()
        size = 0
        with path.open("rb") as source:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
        sha256 = digest.hexdigest()
        key = key_for(sha256)
        if not self.artifacts.exists(key):
            target = self.artifacts.path(key)
            target.parent.mkdir(parents=True, exist_ok=True)
            # A rename: the work folder is inside the working copy.
            partial = target.with_name(f".{sha256}.{uuid.uuid4().hex[:8]}.partial")
            shutil.move(path, partial)
            os.replace(partial, target)
            self.artifacts.publish(key)
        return sha256, size, key

    def put_bytes(self, data: bytes) -> tuple[str, int, str]:
        sha256 = hashlib.sha256(data).hexdigest()
        key = key_for(sha256)
        if not self.artifacts.exists(key):
            target = self.artifacts.path(key)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{sha256}.{uuid.uuid4().hex[:8]}.partial")
            partial.write_bytes(data)
            os.replace(partial, target)
            self.artifacts.publish(key)
        return sha256, len(data), key

    def local_path(self, key: str) -> Path:
        """A local file holding the object (S3: fetched into the working copy if need be)."""
        return self.artifacts.localize(key)

    def exists(self, key: str) -> bool:
        return self.artifacts.exists(key)

    def delete(self, key: str) -> None:
        self.artifacts.delete(key)
