"""bench/hostile: each hostile input of issue 15, the time to its refusal and the peak memory.

Every input goes through `read_untrusted` (the API's and the ingest's reader): the pre-scan and
the parse in a child interpreter with its limits. Printed next to the limits, with a plain
`read_timeline` of a normal corpus file as the baseline (what an accepted timeline costs).
Peak memory is the child's (`RUSAGE_CHILDREN` max RSS, in a fresh process per input so one
input's peak does not hide another's).

Usage: .venv/bin/python bench/hostile.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "timelines"


def nested_lists(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_tracks(depth: int) -> str:
    import opentimelineio as otio

    timeline = otio.schema.Timeline(name="deep")
    parent = otio.schema.Track()
    timeline.tracks.append(parent)
    for level in range(depth):
        child = otio.schema.Stack() if level % 2 else otio.schema.Track()
        parent.append(child)
        parent = child
    return otio.adapters.write_to_string(timeline, "otio_json", indent=-1)  # compact, as an attacker sends it


def million_line_edl() -> str:
    return "TITLE: hostile\n" + "001  AX V C 01:00:00:00 01:00:00:01 01:00:00:00 01:00:00:01\n" * 1_000_000


def zero_rate() -> str:
    text = (CORPUS / "simple_cut.otio").read_text()
    return text.replace('"rate": 24,', '"rate": 0,', 1)


def one(path: str, rate: float | None) -> dict[str, object]:
    """Measured in this (fresh) process: time to the answer, peak RSS of the parsing child."""
    import resource

    from media_pipeline.editorial.safe_read import read_untrusted
    from media_pipeline.editorial.timeline import ReadOptions, TimelineError

    started = time.monotonic()
    try:
        read_untrusted(Path(path), ReadOptions(rate=rate))
        outcome = "accepted"
    except TimelineError as exc:
        outcome = str(exc)
    seconds = time.monotonic() - started
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    # VmHWM, not RUSAGE_SELF: Linux carries ru_maxrss over exec from the bench's own process.
    status = Path("/proc/self/status").read_text()
    own_peak = int(status.split("VmHWM:")[1].split()[0]) / 1024
    return {"seconds": seconds, "child_mb": child_peak, "own_mb": own_peak, "outcome": outcome}


def main() -> None:
    from media_pipeline.editorial.safe_read import TimelineLimits

    limits = TimelineLimits()
    inputs = {
        "baseline: screening_example.otio (accepted)": ("ok.otio", (CORPUS / "screening_example.otio").read_text()),
        "10,000 nested lists (20 KB OTIO)": ("nested.otio", nested_lists(10_000)),
        "5,000 nested tracks OTIO": ("tracks.otio", nested_tracks(5_000)),
        "1M-line EDL": ("huge.edl", million_line_edl()),
        "rate 0 OTIO": ("rate0.otio", zero_rate()),
    }
    print(
        f"limits: {limits.max_items:,} items, depth {limits.max_depth}, {limits.seconds:g} s, "
        f"{limits.memory_bytes >> 20} MB per parse; target: every refusal under 5 s and 500 MB"
    )
    print(f"{'input':46} {'size':>9} {'time':>8} {'parser peak':>12} {'caller peak':>12}  outcome")
    with tempfile.TemporaryDirectory() as tmp:
        for label, (name, text) in inputs.items():
            path = Path(tmp) / name
            path.write_text(text)
            measured = subprocess.run(
                [sys.executable, __file__, "--one", str(path), "24" if name.endswith(".edl") else ""],
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(measured.stdout)
            size = path.stat().st_size
            print(
                f"{label:46} {size / 1e6:8.2f}M {row['seconds']:7.2f}s {row['child_mb']:10.0f}MB "
                f"{row['own_mb']:10.0f}MB  {str(row['outcome'])[:90]}"
            )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        print(json.dumps(one(sys.argv[2], float(sys.argv[3]) if sys.argv[3] else None)))
    else:
        main()
