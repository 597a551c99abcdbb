"""Reading an untrusted timeline without letting it take the process down with it.

Three layers, cheapest first, all in a child interpreter:
1. a linear pre-scan of the bytes (nesting depth of JSON/XML, number of EDL events) refuses
   hostile shapes before any parser sees them: 10,000 nested lists are refused in milliseconds;
2. the child (about 0.2 s of CPU to start) runs with an address-space
   limit (`RLIMIT_AS`) and a CPU-time limit (`RLIMIT_CPU`), killed at a wall-clock deadline: a
   parser that recurses, loops or allocates without end fails alone, and the API's event loop
   and GIL are never its hostage;
3. the parsed timeline's items and nesting depth are counted iteratively against the limits.

The child returns the timeline as OTIO JSON, which the parent reads back: its shape is bounded
by then.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import subprocess
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import opentimelineio as otio

from media_pipeline.editorial.timeline import (
    EDL_ADAPTER,
    ReadOptions,
    ReadResult,
    TimelineError,
    adapter_for,
    read_timeline,
)
from media_pipeline.settings import Settings

PARSE_SECONDS = 20
PARSE_MEMORY_BYTES = 1 << 30
# Per level of timeline nesting, OTIO JSON nests an object, its "children" list and the item's
# own object; FCP XML a few elements. The pre-scan allows that many per level plus headroom.
JSON_LEVELS_PER_ITEM = 4
XML_LEVELS_PER_ITEM = 6
SCAN_HEADROOM = 24
MAX_OTIOZ_BYTES = 256 << 20
CHILD_START_SECONDS = 10  # a fresh interpreter importing OTIO, on a loaded machine


@dataclass(frozen=True)
class TimelineLimits:
    max_items: int = 20_000
    max_depth: int = 32
    seconds: float = PARSE_SECONDS
    memory_bytes: int = PARSE_MEMORY_BYTES

    @classmethod
    def from_settings(cls, settings: Settings) -> TimelineLimits:
        return cls(max_items=settings.max_timeline_items, max_depth=settings.max_timeline_depth)


def read_untrusted(
    path: Path, options: ReadOptions = ReadOptions(), limits: TimelineLimits = TimelineLimits()
) -> ReadResult:
    """`read_timeline`, within `limits`; TimelineError with a sentence for anything beyond them."""
    adapter_for(path)  # an unknown extension is refused here, without starting a child
    reply = _in_child(path, options, limits)
    if "error" in reply:
        raise TimelineError(reply["error"])
    timeline = otio.adapters.read_from_string(reply["otio"], adapter_name="otio_json")
    return ReadResult(timeline=timeline, adapter=reply["adapter"], warnings=reply["warnings"])


# -- 1. before parsing --------------------------------------------------------------------------

_JSON_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_XML_TAGS = re.compile(rb"<(/?)([A-Za-z_][^\s/>]*)[^>]*?(/?)>|<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>", re.S)
_EDL_EVENT = re.compile(rb"^\s*\d+\s", re.M)


def depth_refused(path: Path, depth: int, limits: TimelineLimits) -> TimelineError:
    return TimelineError(
        f"{path.name} nests deeper than a timeline may ({depth} levels of brackets or elements); at most "
        f"{limits.max_depth} levels of nested tracks and stacks are accepted (MEDIA_PIPELINE_MAX_TIMELINE_DEPTH)"
    )


def items_refused(path: Path, count: int, what: str, limits: TimelineLimits, per_item: int = 1) -> TimelineError:
    return TimelineError(
        f"{path.name} holds {count:,} {what}; at most {limits.max_items * per_item:,} are accepted "
        f"(MEDIA_PIPELINE_MAX_TIMELINE_ITEMS is {limits.max_items:,}): split the timeline into reels"
    )


def prescan(path: Path, adapter: str, limits: TimelineLimits) -> None:
    """Linear checks of the raw bytes; raises TimelineError before a parser could choke."""
    if adapter == "otioz":
        _prescan_otioz(path, limits)
        return
    if path.is_dir():  # .otiod bundles: their content.otio is what the adapter reads
        path = path / "content.otio"
        if not path.is_file():
            return
    data = path.read_bytes()
    if adapter == EDL_ADAPTER:
        lines = data.count(b"\n")  # first: far cheaper than finding events
        if lines > limits.max_items * 20:  # comments and notes: a few lines per event
            raise items_refused(path, lines, "lines", limits, per_item=20)
        events = len(_EDL_EVENT.findall(data))
        if events > limits.max_items:
            raise items_refused(path, events, "EDL events", limits)
    elif data.lstrip()[:1] in (b"{", b"["):
        _scan_json(path, data, limits)
    elif data.lstrip()[:1] == b"<":
        _scan_xml(path, data, limits)


def _scan_json(path: Path, data: bytes, limits: TimelineLimits) -> None:
    allowed = limits.max_depth * JSON_LEVELS_PER_ITEM + SCAN_HEADROOM
    depth = objects = 0
    for match in _JSON_TOKENS.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            objects += token == b"{"
            if depth > allowed:
                raise depth_refused(path, depth, limits)
        elif token in (b"]", b"}"):
            depth -= 1
    # Every item is several objects (its ranges, times, metadata): a generous multiple.
    if objects > limits.max_items * 16:
        raise items_refused(path, objects, "JSON objects", limits, per_item=16)


def _scan_xml(path: Path, data: bytes, limits: TimelineLimits) -> None:
    allowed = limits.max_depth * XML_LEVELS_PER_ITEM + SCAN_HEADROOM
    depth = elements = 0
    for match in _XML_TAGS.finditer(data):
        closing, name, empty = match.group(1), match.group(2), match.group(3)
        if name is None:  # comment, CDATA, processing instruction
            continue
        if closing:
            depth -= 1
            continue
        elements += 1
        if not empty:
            depth += 1
            if depth > allowed:
                raise depth_refused(path, depth, limits)
    if elements > limits.max_items * 64:
        raise items_refused(path, elements, "XML elements", limits, per_item=64)


def _prescan_otioz(path: Path, limits: TimelineLimits) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
            if total > MAX_OTIOZ_BYTES:
                raise TimelineError(
                    f"{path.name} unpacks to {total:,} bytes; .otioz bundles up to {MAX_OTIOZ_BYTES:,} bytes "
                    "are accepted"
                )
            content = archive.read("content.otio") if "content.otio" in archive.namelist() else b""
    except zipfile.BadZipFile:
        raise TimelineError(f"{path.name} is not a valid .otioz bundle (not a zip archive)") from None
    _scan_json(path, content, limits)


# -- 2. the parse, in a child -------------------------------------------------------------------


def _in_child(path: Path, options: ReadOptions, limits: TimelineLimits) -> dict[str, Any]:
    # A fresh interpreter, not a fork: this process may be the API's, with threads and sockets a
    # fork would copy. Its limits are set by the child itself before it reads anything.
    request = {"path": str(path), "options": options.as_dict(), "limits": asdict(limits)}
    child = subprocess.Popen(
        [sys.executable, "-m", __name__],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out, _ = child.communicate(json.dumps(request).encode(), timeout=limits.seconds + CHILD_START_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        return {
            "error": f"{path.name} took over {limits.seconds:g} s to read and was abandoned; a timeline of up to "
            f"{limits.max_items:,} items reads in seconds: check the file"
        }
    try:
        reply: dict[str, Any] = json.loads(out)
    except ValueError:  # killed by its limits (SIGXCPU, SIGKILL) or out of memory before answering
        return {
            "error": f"{path.name} needed more than {limits.memory_bytes >> 20} MB or {limits.seconds:g} s of CPU to "
            "read and was abandoned; check the file, or split the timeline"
        }
    return reply


def _child_main() -> None:
    request = json.loads(sys.stdin.buffer.read())
    limits = TimelineLimits(**request["limits"])
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    cpu = math.ceil(limits.seconds)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    path = Path(request["path"])
    try:
        # Here, not in the caller: even a linear scan of 50 MB holds the GIL for seconds.
        prescan(path, adapter_for(path), limits)
        result = read_timeline(path, ReadOptions.from_dict(request["options"]))
        check_shape(path, result.timeline, limits)
        reply: dict[str, Any] = {
            "otio": otio.adapters.write_to_string(result.timeline, adapter_name="otio_json"),
            "adapter": result.adapter,
            "warnings": result.warnings,
        }
    except TimelineError as exc:
        reply = {"error": str(exc)}
    except MemoryError:
        reply = {"error": f"{path.name} needs more than {limits.memory_bytes >> 20} MB to read; split the timeline"}
    sys.stdout.write(json.dumps(reply))
    sys.stdout.flush()
    os._exit(0)  # no interpreter teardown: the answer is out, nothing else is owed


# -- 3. after parsing ---------------------------------------------------------------------------


def check_shape(path: Path, timeline: otio.schema.Timeline, limits: TimelineLimits) -> None:
    """Count items and nesting depth without recursion (a deep timeline must not recurse us)."""
    count = 0
    stack: list[tuple[Any, int]] = [(timeline.tracks, 1)]
    while stack:
        composition, depth = stack.pop()
        if depth > limits.max_depth:
            raise depth_refused(path, depth, limits)
        for child in composition:
            count += 1
            if count > limits.max_items:
                raise items_refused(path, count, "items (clips, gaps, transitions, tracks)", limits)
            if isinstance(child, otio.core.Composition):
                stack.append((child, depth + 1))


if __name__ == "__main__":
    _child_main()
