"""Final Cut Pro X XML read with exact frame counts, at every rate.

The FCP X XML adapter (otio-fcpx-xml-adapter 1.0) reads a file's rational times (`1001/24000s`)
through floats and truncates them, and keeps a format's frame rate as an integer: at 23.976 it
counts 23 frames a second and every frame number drifts. Its structure walk (spines, lanes,
compound clips, markers) is right, so this keeps it and replaces only its time arithmetic: a time
is a Fraction of seconds, divided by the format's exact frame duration, and the frame rate is the
exact rational (given to OTIO as the float it stores, which `exact_rate` turns back into the
rational everywhere the pipeline counts frames).
"""

from __future__ import annotations

from fractions import Fraction
from xml.etree import ElementTree

import opentimelineio as otio
from otio_fcpx_xml_adapter.fcpx_xml import FcpxXml


def seconds(text: str | None) -> Fraction:
    """An FCP X time (`"3600s"`, `"1001/24000s"`, `"0s"`) as exact seconds."""
    if not text:
        return Fraction(0)
    return Fraction(text.strip().removesuffix("s"))


class ExactFcpxXml(FcpxXml):  # type: ignore[misc]  # the adapter ships no type hints
    def __init__(self, root: ElementTree.Element) -> None:
        # The adapter's own constructor parses a string; the caller has the parsed document
        # already (it reads the project's timecode from it too), so it is not parsed twice.
        self.fcpx_xml = root
        self.child_parent_map = {child: parent for parent in root.iter() for child in parent}

    def _frame_duration(self, format_id: str | None) -> Fraction:
        total, rate = self._format_frame_duration(format_id)
        return Fraction(int(total), int(rate))

    def _format_frame_rate(self, format_id: str | None) -> float:
        return float(1 / self._frame_duration(format_id))

    def _number_of_frames(self, time_value: str | None, format_id: str | None) -> int:
        # Times in a file Final Cut Pro wrote are whole frames of their format: round, don't truncate.
        return round(seconds(time_value) / self._frame_duration(format_id))

    def _rational(self, time_value: str | None, format_id: str | None) -> otio.opentime.RationalTime:
        return otio.opentime.RationalTime(
            self._number_of_frames(time_value, format_id), self._format_frame_rate(format_id)
        )

    def _time_range(self, element: object, format_id: str | None) -> otio.opentime.TimeRange:
        return otio.opentime.TimeRange(
            start_time=self._rational(element.get("start", "0s"), format_id),  # type: ignore[attr-defined]
            duration=self._rational(element.get("duration"), format_id),  # type: ignore[attr-defined]
        )

    def _reference_from_id(self, asset_id: str, default_format: str | None) -> otio.core.MediaReference:
        reference = super()._reference_from_id(asset_id, default_format)
        if isinstance(reference, otio.schema.ExternalReference):
            asset = self._asset_by_id(asset_id)
            reference.available_range = self._time_range(asset, asset.get("format", default_format))
        return reference


def read_fcpx(root: ElementTree.Element) -> otio.core.SerializableObject:
    """What the adapter's `read_from_string` returns for this document (a Timeline, or a
    collection of them), exact."""
    return ExactFcpxXml(root).to_otio()
