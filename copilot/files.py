"""Files the copilot keeps for itself: written whole or not at all, keyed by the code that wrote them."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from types import ModuleType


def write_bytes_atomically(path: Path, content: bytes) -> None:
    """Write to a temporary file next to `path`, flush it to disk, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def code_fingerprint(*modules: ModuleType) -> str:
    """A digest of these modules' source: part of the key of anything pickled from their classes,
    so that an upgrade never unpickles objects of a shape the code no longer has."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(module.__file__ or "").read_bytes())
    return digest.hexdigest()[:16]
