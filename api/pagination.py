"""Opaque cursors for keyset pagination: a page never skips or repeats rows when rows are added."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

from fastapi import Query

from api.problems import field_problem

LimitQuery = Annotated[int, Query(ge=1, le=200, description="Items per page")]
CursorQuery = Annotated[
    str | None,
    Query(max_length=500, pattern=r"^[A-Za-z0-9_-]+$", description="`next_cursor` of the previous page"),
]


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, **fields: type) -> dict[str, Any] | None:
    """The position a cursor encodes, each of `fields` checked against its type; 422 if not ours."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        position = None
    valid = isinstance(position, dict) and all(_valid(position.get(name), kind) for name, kind in fields.items())
    if not valid:
        raise field_problem("cursor", "not a cursor this list handed out; start again without one", location="query")
    assert isinstance(position, dict)
    return position


def _valid(value: Any, kind: type) -> bool:
    if not isinstance(value, kind) or isinstance(value, bool):
        return False
    # Cursor integers go into SQL comparisons with integer columns: keep them in range.
    return not isinstance(value, int) or -(2**31) <= value < 2**31
