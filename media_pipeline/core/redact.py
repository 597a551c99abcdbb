"""Text a client may see, without this machine's paths.

Error messages from readers and tools name the files they worked on: an upload's temporary
folder, the artifact root, a media library. Those are this server's business; the file's own
name is enough for a user to know which file is meant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

# An absolute POSIX path of at least two components, as it appears inside a sentence.
_ABSOLUTE = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"(),;:]+/)+([^\s/'\"(),;:]*)")


def without_paths(text: str, known: Iterable[Path] = ()) -> str:
    """`text` with each absolute path replaced by its last component."""
    for path in sorted(known, key=lambda p: len(str(p)), reverse=True):
        text = text.replace(str(path), path.name)
    return _ABSOLUTE.sub(lambda match: match.group(1) or "(folder)", text)
