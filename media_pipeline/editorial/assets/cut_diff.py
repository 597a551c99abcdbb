"""The cut diff asset: each cut version against the previous ingested version of the same cut."""

import json
from typing import Any

import dagster as dg
from pydantic import Field

from media_pipeline.core.files import atomic_path
from media_pipeline.db.models import CutStatus
from media_pipeline.editorial.assets.cuts import GROUP, cut_shots, load_cut
from media_pipeline.editorial.cut_diff import (
    DEFAULT_HANDLES,
    PRECEDENCE,
    CutDiff,
    cut_facts,
    diff_cuts,
    ingested_versions_before,
    load_cut_history,
)
from media_pipeline.editorial.partitions import cut_versions
from media_pipeline.resources import ArtifactStore, DatabaseResource


class CutDiffConfig(dg.Config):
    handles: int = Field(
        default=DEFAULT_HANDLES,
        ge=0,
        description="Frames of handle on each side of the previous version's source range; "
        "an extension past them is a rescan",
    )


@dg.asset(
    partitions_def=cut_versions,
    group_name=GROUP,
    deps=[cut_shots],
    kinds={"json"},
    description="Shot-by-shot changes against the previous version of the cut: new, omitted, reinstated, "
    "rescan, cut change, media changed, moved.",
)
def cut_diff(
    context: dg.AssetExecutionContext, config: CutDiffConfig, database: DatabaseResource, artifacts: ArtifactStore
) -> dg.MaterializeResult:
    key = context.partition_key
    with database.session() as session:
        cut = load_cut(session, key)
        if cut.status != CutStatus.INGESTED:
            raise dg.Failure(
                description=f"{key} is {cut.status}, not ingested; materialize cut_shots first", allow_retries=False
            )
        current = cut_facts(cut)
        before = ingested_versions_before(session, cut)
        previous, earlier = load_cut_history(session, cut)
    against = before[-1].partition_key if before else None
    diff = diff_cuts(previous or [], current, earlier, handles=config.handles)
    output = artifacts.cut_dir(key) / "cut_diff.json"
    with atomic_path(output) as tmp:
        tmp.write_text(json.dumps({"cut": key, "against": against, **diff.as_dict()}, indent=2))
    artifacts.publish(output)
    context.log.info(
        f"{key} against {against or 'nothing (first version)'}: "
        + ", ".join(f"{count} {status}" for status, count in diff.summary().items() if count)
    )
    metadata: dict[str, Any] = {status: count for status, count in diff.summary().items()}
    metadata["changes"] = dg.MetadataValue.md(changes_table(diff))
    metadata["path"] = dg.MetadataValue.path(str(output))
    metadata["against"] = against or "none"
    return dg.MaterializeResult(metadata=metadata)


def changes_table(diff: CutDiff, limit: int = 100) -> str:
    changed = sorted(diff.changed(), key=lambda entry: PRECEDENCE.index(entry.status))
    if not changed:
        return "no changes"
    lines = ["| status | shot | was | now | changes |", "|---|---|---|---|---|"]
    for entry in changed[:limit]:
        lines.append(
            f"| {entry.status} | {_md(entry.name)} | {_position(entry.old_index)} | {_position(entry.new_index)} "
            f"| {_md('; '.join(entry.changes))} |"
        )
    if len(changed) > limit:
        lines.append(f"| ... | {len(changed) - limit} more in cut_diff.json | | | |")
    return "\n".join(lines)


def _position(index: int | None) -> str:
    # Counted from 1, as in the change sentences.
    return "" if index is None else str(index + 1)


def _md(text: str) -> str:
    return text.replace("|", "\\|")
