"""Request parameters shared by several routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Request
from pydantic import StringConstraints

from api.problems import field_problem

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Repeating a request with the same key and body returns the job the first one created; "
        "the same key with a different body is a 409 `idempotency_conflict`. Printable ASCII, at most 255.",
    ),
]

# Printable text: control characters (NUL above all) have no business in names and break
# some databases.
TextQuery = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


def single_query_values(request: Request) -> None:
    """A query parameter given twice is refused: the API takes single values only, and which of
    two the framework would use is not something a client should have to know."""
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name in seen:
            raise field_problem(name, "given more than once; give it once", location="query")
        seen.add(name)
