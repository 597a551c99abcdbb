"""Where an item's video comes from: pluggable fetchers, one per kind of source.

Each fetcher turns an item into a local file plus its provenance, or refuses with a sentence
for the client (never a server path, never a stack trace). Downloads are kept, with their
sha-256, in the batch's folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import socket
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from media_pipeline.core.files import atomic_path, sha256_file
from media_pipeline.extraction.request import ExtractionItem

PLATFORMS_EXTRA = "pip install 'media_pipeline[platforms]'"
_MAX_REDIRECTS = 5


class SourceRefused(Exception):
    """The item's source cannot be used; `str()` is the sentence the item fails with."""


@dataclass(frozen=True)
class LibraryFile:
    """A media library item as a local file (fetched from the store if need be)."""

    path: Path
    sha256: str
    type: str  # "image" or "video"


@dataclass(frozen=True)
class SourcePolicy:
    media_roots: tuple[Path, ...] = ()
    allow_private: bool = False
    max_bytes: int = 2 * 1024**3
    timeout: float = 300.0
    # The media library's items by id (None: no such item); None: no library in this deployment.
    library: Callable[[int], LibraryFile | None] | None = None


@dataclass
class FetchedSource:
    path: Path
    sha256: str
    provenance: dict[str, Any] = field(default_factory=dict)


Fetcher = Callable[[ExtractionItem, Path, SourcePolicy], FetchedSource]


def describe(item: ExtractionItem) -> str:
    """What the client sent, to name the item in logs and manifests."""
    if item.source is not None:
        return item.source
    if item.media_id is not None:
        return f"media:{item.media_id}"
    return f"{item.platform}:{item.code}"


def fetch(item: ExtractionItem, workdir: Path, policy: SourcePolicy) -> FetchedSource:
    """The item's video as a local file; `workdir` is where a download is kept."""
    if item.media_id is not None:
        return fetch_media_id(item, workdir, policy)
    if item.platform is not None:
        if item.platform == "file":
            return fetch_file(_path_from(item.code or ""), policy)
        if item.platform == "url":
            return fetch_url(item.code or "", workdir, policy)
        return fetch_platform(item, workdir, policy)
    assert item.source is not None
    if item.source.startswith("file://"):
        parsed = urllib.parse.urlparse(item.source)
        if parsed.netloc not in ("", "localhost"):
            raise SourceRefused("file:// sources must be on this server (file:///absolute/path)")
        return fetch_file(Path(urllib.parse.unquote(parsed.path)), policy)
    return fetch_url(item.source, workdir, policy)


# -- files under the media roots --------------------------------------------------------------

_NOT_ALLOWED = (
    "this file is not in a folder the server reads media from (MEDIA_PIPELINE_MEDIA_ROOTS); "
    "copy it into one of those folders or send it as an http(s) URL"
)


def _path_from(code: str) -> Path:
    return Path(urllib.parse.unquote(urllib.parse.urlparse(code).path) if code.startswith("file://") else code)


def fetch_file(path: Path, policy: SourcePolicy) -> FetchedSource:
    # The same sentence whether the path exists or not, so a client cannot probe the filesystem.
    if not path.is_absolute():
        raise SourceRefused("file sources need an absolute path (file:///folder/video.mp4)")
    resolved = Path(os.path.realpath(path))  # symlinks followed before the check, not after
    if not any(resolved.is_relative_to(root) for root in policy.media_roots):
        raise SourceRefused(_NOT_ALLOWED)
    if not resolved.is_file():
        raise SourceRefused("there is no such file in the media folders; check the path")
    return FetchedSource(resolved, sha256_file(resolved), {"kind": "file", "name": resolved.name})


# -- HTTP(S) downloads ------------------------------------------------------------------------


def _refused_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_host(url: str, policy: SourcePolicy) -> str:
    """The address to connect to for `url`; refused when the host resolves to loopback, private,
    link-local or other non-public addresses (any of them), unless the policy allows those."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise SourceRefused("only http:// and https:// URLs with a host can be downloaded")
    try:
        infos = socket.getaddrinfo(parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError):
        raise SourceRefused(f"the host {parsed.hostname} could not be resolved; check the URL") from None
    addresses = [str(info[4][0]) for info in infos]
    if not policy.allow_private and any(_refused_address(address) for address in addresses):
        raise SourceRefused(
            f"{parsed.hostname} is a loopback, private or link-local address, which this server does not "
            "download from (MEDIA_PIPELINE_FETCH_ALLOW_PRIVATE); use a public URL"
        )
    return addresses[0]


def _pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """`url` aimed at the address that was checked, so a second DNS answer cannot send the
    download elsewhere (DNS rebinding); Host header and TLS server name stay the original host."""
    parsed = urllib.parse.urlparse(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parsed.port}" if parsed.port else host
    original = parsed.netloc.rpartition("@")[2]
    return parsed._replace(netloc=netloc).geturl(), {"Host": original}, {"sni_hostname": parsed.hostname or ""}


def _file_name(url: str) -> str:
    name = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:100].lstrip(".")
    return safe or "download"


def fetch_url(url: str, workdir: Path, policy: SourcePolicy) -> FetchedSource:
    """Download `url` (following at most 5 redirects, each checked) into `workdir`."""
    started = time.monotonic()
    deadline = started + policy.timeout
    hops: list[str] = []
    current = url
    with httpx.Client(follow_redirects=False, timeout=httpx.Timeout(min(30.0, policy.timeout))) as client:
        for _ in range(_MAX_REDIRECTS + 1):
            target, headers, extensions = _pinned(current, check_host(current, policy))
            try:
                with client.stream(
                    "GET", target, headers={"User-Agent": "media_pipeline", **headers}, extensions=extensions
                ) as response:
                    if response.is_redirect:
                        location = response.headers.get("location", "")
                        hops.append(current)
                        current = urllib.parse.urljoin(current, location)
                        continue
                    if response.status_code != 200:
                        raise SourceRefused(f"the server answered HTTP {response.status_code} for {url}")
                    declared = response.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > policy.max_bytes:
                        raise SourceRefused(_too_large(policy))
                    return _save(response, url, current, hops, workdir, policy, deadline, started)
            except httpx.TimeoutException:
                raise SourceRefused(f"downloading {url} timed out; try again or use a faster host") from None
            except httpx.HTTPError as exc:
                raise SourceRefused(f"downloading {url} failed ({type(exc).__name__}); check the URL") from None
    raise SourceRefused(f"{url} redirected more than {_MAX_REDIRECTS} times; send the final URL")


def _too_large(policy: SourcePolicy) -> str:
    return f"the video is larger than this server downloads ({policy.max_bytes} bytes, MEDIA_PIPELINE_FETCH_MAX_BYTES)"


def _save(
    response: httpx.Response,
    url: str,
    final_url: str,
    hops: list[str],
    workdir: Path,
    policy: SourcePolicy,
    deadline: float,
    started: float,
) -> FetchedSource:
    digest = hashlib.sha256()
    size = 0
    target = workdir / _file_name(final_url)
    with atomic_path(target) as tmp, tmp.open("wb") as out:
        for chunk in response.iter_bytes(1 << 20):
            size += len(chunk)
            if size > policy.max_bytes:
                raise SourceRefused(_too_large(policy))
            if time.monotonic() > deadline:
                raise SourceRefused(
                    f"downloading {url} took longer than {policy.timeout:.0f} s (MEDIA_PIPELINE_FETCH_TIMEOUT)"
                )
            digest.update(chunk)
            out.write(chunk)
    return FetchedSource(
        target,
        digest.hexdigest(),
        {
            "kind": "url",
            "url": url,
            "final_url": final_url,
            "redirects": hops,
            "content_type": response.headers.get("content-type"),
            "bytes": size,
            "fetched_at": dt.datetime.now(dt.UTC).isoformat(),
            "seconds": round(time.monotonic() - started, 3),
        },
    )


# -- the media library and video platforms ----------------------------------------------------


def fetch_media_id(item: ExtractionItem, workdir: Path, policy: SourcePolicy) -> FetchedSource:
    """A video of the media library, by id: its stored bytes, never a path the client named."""
    media_id = item.media_id
    if policy.library is None:
        raise SourceRefused(
            f"media_id {media_id}: this run has no media library to read from; "
            "send the video as a file:// path under the media folders or as an http(s) URL"
        )
    found = policy.library(media_id) if media_id is not None else None
    if found is None:
        raise SourceRefused(
            f"there is no media with id {media_id} in the library; upload it with POST /v1/media and give "
            "the id it answers"
        )
    if found.type != "video":
        raise SourceRefused(f"media {media_id} is {'an' if found.type[0] in 'aeiou' else 'a'} {found.type}; "
                            "frames are extracted from videos")  # fmt: skip
    return FetchedSource(found.path, found.sha256, {"kind": "media", "media_id": media_id})


def fetch_platform(item: ExtractionItem, workdir: Path, policy: SourcePolicy) -> FetchedSource:
    """A platform code (youtube, instagram, ...) through yt-dlp, when the optional extra is installed."""
    try:
        import yt_dlp  # type: ignore[import-not-found]
    except ImportError:
        raise SourceRefused(
            f"{item.platform} videos need the optional yt-dlp support, which this server does not have; "
            f"ask the operator to run `{PLATFORMS_EXTRA}`, or send the video as a URL"
        ) from None
    target = workdir / "platform"
    target.mkdir(parents=True, exist_ok=True)
    options = {
        "outtmpl": str(target / "%(id)s.%(ext)s"),
        "format": "bv*[ext=mp4]+ba/b[ext=mp4]/bv*+ba/b",
        "max_filesize": policy.max_bytes,
        "socket_timeout": min(30.0, policy.timeout),
        "quiet": True,
        "noprogress": True,
        "noplaylist": True,
    }
    # A code is an id on the platform, never a URL (ExtractionItem refuses those).
    code = urllib.parse.quote(item.code or "", safe="")
    url = f"https://www.youtube.com/watch?v={code}" if item.platform == "youtube" else f"{item.platform}:{item.code}"
    try:
        with yt_dlp.YoutubeDL(options) as downloader:
            info = downloader.extract_info(url, download=True)
            path = Path(downloader.prepare_filename(info))
    except Exception as exc:  # yt-dlp raises its own DownloadError and many others
        raise SourceRefused(
            f"{item.platform} video {item.code} could not be downloaded ({type(exc).__name__})"
        ) from None
    if not path.is_file():
        raise SourceRefused(f"{item.platform} video {item.code} could not be downloaded")
    return FetchedSource(
        path,
        sha256_file(path),
        {"kind": "platform", "platform": item.platform, "code": item.code, "title": info.get("title")},
    )
