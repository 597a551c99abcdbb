import uuid

import dagster as dg

# One partition per render request, "<composition id>.<render id>"; segments are items inside the run.
composition_renders = dg.DynamicPartitionsDefinition(name="composition_renders")


def new_render_key(composition_id: int) -> str:
    return f"{composition_id}.{uuid.uuid4().hex[:12]}"


def split_render_key(key: str) -> tuple[int, str]:
    """(composition id, render id)."""
    composition, _, render_id = key.partition(".")
    if not composition.isdigit() or not render_id:
        raise ValueError(f"{key!r} is not a composition render key (<composition id>.<render id>)")
    return int(composition), render_id
