import re

import dagster as dg

# One partition per published cut version; keys are "<project>.<cut>.v<NNN>".
cut_versions = dg.DynamicPartitionsDefinition(name="cut_versions")

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def partition_key_for(project: str, name: str, version: int) -> str:
    # Dagster forbids , | [ ] in dynamic keys, and keys appear in URLs and folder names.
    def slug(text: str) -> str:
        return _UNSAFE.sub("_", text).strip("_")[:80] or "untitled"

    return f"{slug(project)}.{slug(name)}.v{version:03d}"
