"""Files the copilot keeps for itself: written whole or not at all, keyed by the code that wrote them."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from copilot.errors import InvalidInput

log = logging.getLogger(__name__)

T = TypeVar("T")
# A temporary file older than this was left by a process killed while writing (hundreds of MB for an
# index snapshot at scale); another process's write in progress is younger.
ABANDONED_WRITE_S = 3600


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


def read_pickle(path: Path, kind: type[T]) -> T | None:
    """The `kind` object kept at `path`, or None when there is none yet. A cache: a torn, foreign or
    outdated file is reported and built again by the caller, never fatal."""
    try:
        value = pickle.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except Exception as exc:
        log.warning("ignoring %s: %s", path, exc)
        return None
    return value if isinstance(value, kind) else None


def keep_pickle(path: Path, value: object) -> None:
    """Keep `value` at `path` (named `<what>-<key>.pickle`) in place of the other keys' files of the same
    kind. A read-only or full disk costs the next process a rebuild, nothing more."""
    what = path.name.split("-", 1)[0]
    try:
        write_bytes_atomically(path, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        for stale in path.parent.glob(f"{what}-*.pickle"):
            if stale != path:
                stale.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not keep %s: %s", path, exc)
    for leftover in path.parent.glob(f".{what}-*.tmp"):
        with suppress(OSError):
            if time.time() - leftover.stat().st_mtime > ABANDONED_WRITE_S:
                leftover.unlink()


def expand_paths(paths: list[str], suffixes: set[str]) -> tuple[list[tuple[str, Path]], list[Path], list[str]]:
    """Files to read (as given, resolved), the folders that were walked, and skipped files."""
    files: list[tuple[str, Path]] = []
    folders: list[Path] = []
    skipped: list[str] = []
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise InvalidInput(f"No such file or folder: {', '.join(missing)}")
    for given in paths:
        path = Path(given)
        if path.is_dir():
            folders.append(path.resolve())
            for child in sorted(path.rglob("*")):
                if not child.is_file() or child.name.startswith((".", "~$")):  # ~$: Office lock files
                    continue
                if child.suffix.lower() in suffixes:
                    files.append((str(child), child.resolve()))
                else:
                    skipped.append(str(child))
        elif path.suffix.lower() not in suffixes:
            raise InvalidInput(f"{given}: unsupported file type (supported: {', '.join(sorted(suffixes))})")
        else:
            files.append((given, path.resolve()))
    return files, folders, skipped
