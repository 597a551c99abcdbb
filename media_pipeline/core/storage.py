"""Where finished artifacts are kept: the local artifact folder or an S3-compatible bucket.

The local artifact root is always the working copy ffmpeg and Pillow write into (under hidden
`.partial` names, renamed into place when complete, see files.py). A file is *published* once it
is complete: with `LocalStorage` the rename is all there is; with `S3Storage` the finished file
is uploaded (multipart above 8 MiB, content type set) and readers on any machine get it from the
bucket. An S3 object appears only when its upload completes (a multipart upload is invisible
until CompleteMultipartUpload), so a half-written artifact is never visible in either backend.

Keys are relative POSIX paths (`cuts/show.reel.v001/contact_sheet.jpg`), the same on both
backends and the same as the download URLs the API hands out.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from media_pipeline.core.files import atomic_path

CHUNK = 256 * 1024
MULTIPART_BYTES = 8 * 1024 * 1024

# Types mimetypes does not know, or guesses differently on different systems.
CONTENT_TYPES = {
    ".otio": "application/json",
    ".otioz": "application/zip",
    ".otiod": "application/octet-stream",
    ".edl": "text/plain; charset=utf-8",
    ".xml": "application/xml",
    ".fcpxml": "application/xml",
    ".aaf": "application/octet-stream",
    ".json": "application/json",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".mov": "video/quicktime",
    ".mp4": "video/mp4",
    ".wav": "audio/wav",
    ".txt": "text/plain; charset=utf-8",
}


def guess_content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


class StorageError(Exception):
    """The store cannot be used (unreachable, no such bucket, refused credentials): a sentence."""


class InvalidKey(ValueError):
    pass


def check_key(key: str) -> str:
    """`key` if it names a visible file below the root, else InvalidKey.

    Refused: empty, absolute, `.`/`..` segments, backslashes, NUL, and hidden names (half-written
    `.partial` files start with a dot), so no key reaches outside the root or a file in progress.
    """
    if not key or "\x00" in key or "\\" in key or key.startswith("/"):
        raise InvalidKey(key)
    if any(part in ("", ".", "..") or part.startswith(".") for part in key.split("/")):
        raise InvalidKey(key)
    return key


def confined_file(root: Path, key: str) -> Path | None:
    """The existing regular file `key` names under `root`, symlinks resolved and kept inside it."""
    try:
        parts = check_key(key).split("/")
        base = root.resolve(strict=True)
        candidate = base.joinpath(*parts).resolve(strict=True)
    except (InvalidKey, OSError, RuntimeError, ValueError):
        return None
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    mtime: float  # seconds since the epoch
    etag: str  # quoted, as in an HTTP ETag header
    content_type: str


class ArtifactStorage(Protocol):
    """Finished artifacts by key. `LocalStorage` and `S3Storage` are the two implementations."""

    name: str

    def put_file(self, key: str, source: Path, content_type: str | None = None) -> StoredObject:
        """Publish the complete file `source` as `key` (atomically: readers see all or nothing)."""
        ...

    def stat(self, key: str) -> StoredObject | None:
        """What is stored at `key`, or None."""
        ...

    def exists(self, key: str) -> bool: ...

    def iter_bytes(self, key: str, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        """The object's bytes from `start`, `length` of them (None: to the end), in chunks."""
        ...

    def get_file(self, key: str, target: Path) -> Path:
        """Copy the object to `target` (written under a partial name, renamed when complete)."""
        ...

    def delete(self, key: str) -> None:
        """Remove `key`; a key that is not there is not an error."""
        ...

    def list_objects(self, prefix: str) -> list[StoredObject]:
        """Every stored object whose key starts with `prefix` (a folder ends in `/`), by key."""
        ...

    def check(self) -> str | None:
        """None when the store can be read and written, else a sentence saying what is wrong."""
        ...


class LocalStorage:
    """The artifact folder itself: publishing is the atomic rename that already happened."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def _target(self, key: str) -> Path:
        candidate = (self.root / check_key(key)).resolve()
        if not candidate.is_relative_to(self.root):
            raise InvalidKey(key)
        return candidate

    def put_file(self, key: str, source: Path, content_type: str | None = None) -> StoredObject:
        target = self._target(key)
        if not (target.exists() and source.resolve() == target):
            with atomic_path(target) as tmp:
                _copy(source, tmp)
        stored = self.stat(key)
        if stored is None:
            raise StorageError(f"{key} was written but cannot be read back from the artifact folder")
        return stored

    def stat(self, key: str) -> StoredObject | None:
        path = confined_file(self.root, key)
        if path is None:
            return None
        info = path.stat()
        return StoredObject(
            key=key,
            size=info.st_size,
            mtime=info.st_mtime,
            etag=f'"{info.st_mtime_ns:x}-{info.st_size:x}"',
            content_type=guess_content_type(key),
        )

    def exists(self, key: str) -> bool:
        return confined_file(self.root, key) is not None

    def iter_bytes(self, key: str, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        path = confined_file(self.root, key)
        if path is None:
            raise FileNotFoundError(key)
        return _iter_file(path, start, length)

    def get_file(self, key: str, target: Path) -> Path:
        path = confined_file(self.root, key)
        if path is None:
            raise FileNotFoundError(key)
        if target.exists() and target.resolve() == path:
            return target
        with atomic_path(target) as tmp:
            _copy(path, tmp)
        return target

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._target(key).unlink()

    def list_objects(self, prefix: str) -> list[StoredObject]:
        folder = prefix.rpartition("/")[0]
        base = self.root / folder if folder else self.root
        if not base.is_dir() or not base.resolve().is_relative_to(self.root):
            return []
        found = []
        for path in base.rglob("*"):
            key = path.relative_to(self.root).as_posix()
            if key.startswith(prefix) and (stored := self.stat(key)) is not None:
                found.append(stored)  # stat() skips hidden (half-written) names and links out
        return sorted(found, key=lambda item: item.key)

    def check(self) -> str | None:
        if not self.root.is_dir():
            return f"the artifact root {self.root} does not exist"
        if not os.access(self.root, os.W_OK | os.X_OK):
            return f"the artifact root {self.root} is not writable"
        return None


@dataclass(frozen=True)
class S3Config:
    bucket: str
    endpoint_url: str = ""  # empty: AWS itself
    region: str = "us-east-1"
    access_key: str = ""
    secret_key: str = field(default="", repr=False)  # never in a log line or an error
    prefix: str = ""

    def __post_init__(self) -> None:
        if not self.bucket:
            raise ValueError("the S3 storage needs a bucket: set MEDIA_PIPELINE_S3_BUCKET")


class S3Storage:
    """An S3-compatible bucket (AWS, MinIO, Ceph, ...), through boto3."""

    name = "s3"

    def __init__(self, config: S3Config) -> None:
        # boto3 is imported here so the local backend never pays for it.
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.config = config
        self.prefix = config.prefix.strip("/") + "/" if config.prefix.strip("/") else ""
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=config.endpoint_url or None,
            region_name=config.region or None,
            aws_access_key_id=config.access_key or None,
            aws_secret_access_key=config.secret_key or None,
            config=Config(
                # Path-style addressing works with MinIO and any host name (no bucket DNS).
                s3={"addressing_style": "path"},
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
                signature_version="s3v4",
            ),
        )
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_BYTES, multipart_chunksize=MULTIPART_BYTES, max_concurrency=4
        )

    def object_key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put_file(self, key: str, source: Path, content_type: str | None = None) -> StoredObject:
        extra = {"ContentType": content_type or guess_content_type(key)}
        name = self.object_key(key)
        try:
            self._client.upload_file(str(source), self.config.bucket, name, ExtraArgs=extra, Config=self._transfer)
        except Exception as exc:
            raise StorageError(f"could not upload {key} to the S3 storage: {self.explain(exc)}") from exc
        stored = self.stat(key)
        if stored is None:
            raise StorageError(f"{key} was uploaded but the S3 storage does not list it")
        return stored

    def stat(self, key: str) -> StoredObject | None:
        try:
            name = self.object_key(key)
        except InvalidKey:
            return None
        try:
            head = self._client.head_object(Bucket=self.config.bucket, Key=name)
        except Exception as exc:
            if _status(exc) == 404:
                return None
            raise StorageError(f"could not read {key} from the S3 storage: {self.explain(exc)}") from exc
        return StoredObject(
            key=key,
            size=int(head["ContentLength"]),
            mtime=head["LastModified"].timestamp(),
            etag=head.get("ETag") or f'"{int(head["LastModified"].timestamp()):x}-{int(head["ContentLength"]):x}"',
            content_type=head.get("ContentType") or guess_content_type(key),
        )

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def iter_bytes(self, key: str, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        if length == 0:
            return iter(())
        # GetObject with a Range reads only the bytes asked for, never the whole object.
        ask = f"bytes={start}-" if length is None else f"bytes={start}-{start + length - 1}"
        name = self.object_key(key)
        try:
            response = self._client.get_object(Bucket=self.config.bucket, Key=name, Range=ask)
        except Exception as exc:
            if _status(exc) == 404 or _code(exc) == "NoSuchKey":
                raise FileNotFoundError(key) from exc
            raise StorageError(f"could not read {key} from the S3 storage: {self.explain(exc)}") from exc
        return _iter_body(response["Body"])

    def get_file(self, key: str, target: Path) -> Path:
        name = self.object_key(key)
        with atomic_path(target) as tmp:
            try:
                self._client.download_file(self.config.bucket, name, str(tmp), Config=self._transfer)
            except Exception as exc:
                if _status(exc) == 404:
                    raise FileNotFoundError(key) from exc
                raise StorageError(f"could not download {key} from the S3 storage: {self.explain(exc)}") from exc
        return target

    def delete(self, key: str) -> None:
        name = self.object_key(key)
        try:
            self._client.delete_object(Bucket=self.config.bucket, Key=name)
        except Exception as exc:
            raise StorageError(f"could not delete {key} from the S3 storage: {self.explain(exc)}") from exc

    def list_objects(self, prefix: str) -> list[StoredObject]:
        found = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.config.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"][len(self.prefix) :]
                    found.append(
                        StoredObject(
                            key=key,
                            size=int(item["Size"]),
                            mtime=item["LastModified"].timestamp(),
                            etag=item.get("ETag", ""),
                            content_type=guess_content_type(key),  # a listing does not carry it
                        )
                    )
        except Exception as exc:
            raise StorageError(f"could not list {prefix} in the S3 storage: {self.explain(exc)}") from exc
        return sorted(found, key=lambda item: item.key)

    def check(self) -> str | None:
        try:
            self._client.head_bucket(Bucket=self.config.bucket)
        except Exception as exc:
            return f"the S3 storage is not usable: {self.explain(exc)}"
        return None

    def explain(self, exc: BaseException) -> str:
        """A sentence for what went wrong talking to the bucket (never a traceback or a secret)."""
        from botocore.exceptions import (
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )

        where = self.config.endpoint_url or "AWS S3"
        bucket = self.config.bucket
        status, code = _status(exc), _code(exc)
        if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
            return f"the endpoint {where} cannot be reached; check MEDIA_PIPELINE_S3_ENDPOINT_URL"
        if isinstance(exc, ReadTimeoutError):
            return f"the endpoint {where} did not answer in time"
        if isinstance(exc, NoCredentialsError):
            return "no credentials are set; set MEDIA_PIPELINE_S3_ACCESS_KEY and MEDIA_PIPELINE_S3_SECRET_KEY"
        if code == "NoSuchBucket" or (status == 404 and code in ("404", "NotFound", "")):
            return f"the bucket {bucket!r} does not exist at {where}; create it or fix MEDIA_PIPELINE_S3_BUCKET"
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403") or status == 403:
            return (
                f"{where} refused the credentials for bucket {bucket!r}; check MEDIA_PIPELINE_S3_ACCESS_KEY "
                "and MEDIA_PIPELINE_S3_SECRET_KEY and the bucket's policy"
            )
        if status:
            return f"{where} answered HTTP {status}" + (f" ({code})" if code else "")
        return f"{type(exc).__name__} talking to {where}"


def _status(exc: BaseException) -> int:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code") or "")


def _iter_body(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK)
    finally:
        body.close()


def _iter_file(path: Path, start: int, length: int | None) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(start)
        remaining = length if length is not None else max(0, path.stat().st_size - start)
        while remaining > 0:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


def _copy(source: Path, target: Path) -> None:
    with source.open("rb") as src, target.open("wb") as out:
        while block := src.read(1 << 20):
            out.write(block)
