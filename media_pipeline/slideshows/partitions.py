import uuid

import dagster as dg

# One partition per render request, "<slideshow id>.<render id>"; scenes are items inside the run.
slideshow_renders = dg.DynamicPartitionsDefinition(name="slideshow_renders")


def new_render_key(slideshow_id: str) -> str:
    return f"{slideshow_id}.{uuid.uuid4().hex[:12]}"


def split_render_key(key: str) -> tuple[str, str]:
    """(slideshow id, render id); ids never contain a dot."""
    slideshow_id, _, render_id = key.rpartition(".")
    if not slideshow_id or not render_id:
        raise ValueError(f"{key!r} is not a slideshow render key (<slideshow id>.<render id>)")
    return slideshow_id, render_id
