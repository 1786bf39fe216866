"""Executors run an approved action. Each is idempotent: running it again for the same action
overwrites or re-sends the same thing, so a retry after a crash never duplicates the artefact."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

import httpx

from copilot.errors import ConfigError
from copilot.settings import Settings


class Executor(Protocol):
    """Runs approved actions. It may also have `done(action) -> dict | None`: its own record of
    having run the action (what `run` would return), or None when it has none or cannot know, as
    a webhook cannot. Reconciliation after a crash settles an action as executed only on such
    records; see `executed_record`."""

    name: str

    def run(self, action: dict[str, Any]) -> dict[str, Any]:
        """Carry out the action; return what was done; raise on failure."""
        ...


def executed_record(executor: Executor, action: dict[str, Any]) -> dict[str, Any] | None:
    """The executor's record of having run `action`; None without `done` (unknown, so re-run)."""
    done = getattr(executor, "done", None)
    return done(action) if callable(done) else None


class OutboxExecutor:
    """Write the action's artefact into the outbox folder: `<id>.md` or `<id>.json`."""

    name = "outbox"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def run(self, action: dict[str, Any]) -> dict[str, Any]:
        path, content = self._artefact(action)
        write_atomically(path, content)
        return {"path": str(path), "bytes": len(content.encode("utf-8"))}

    def done(self, action: dict[str, Any]) -> dict[str, Any] | None:
        """Written: the file is there with exactly the content `run` writes (writes are atomic,
        so a file that is there is whole)."""
        path, content = self._artefact(action)
        expected = content.encode("utf-8")
        try:
            written = path.read_bytes()
        except OSError:
            return None
        return {"path": str(path), "bytes": len(expected)} if written == expected else None

    def _artefact(self, action: dict[str, Any]) -> tuple[Path, str]:
        markdown = (action.get("arguments") or {}).get("markdown")
        if markdown:
            return self.folder / f"{action['id']}.md", str(markdown)
        return self.folder / f"{action['id']}.json", json.dumps(envelope(action), ensure_ascii=False, indent=2,
                                                                 default=str)


NO_WEBHOOK = {"skipped": "no webhook configured (COPILOT_WEBHOOK_URL)"}


class WebhookExecutor:
    """POST the action as JSON; the action id travels as Idempotency-Key so receivers can dedupe."""

    name = "webhook"

    def __init__(self, url: str | None, timeout_s: float = 10.0, client: httpx.Client | None = None) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.client = client

    def run(self, action: dict[str, Any]) -> dict[str, Any]:
        if not self.url:
            return dict(NO_WEBHOOK)
        headers = {"Idempotency-Key": str(action["id"])}
        body = json.loads(json.dumps(envelope(action), ensure_ascii=False, default=str))
        if self.client is not None:
            response = self.client.post(self.url, json=body, headers=headers, timeout=self.timeout_s)
        else:
            response = httpx.post(self.url, json=body, headers=headers, timeout=self.timeout_s)
        response.raise_for_status()
        return {"url": self.url, "status_code": response.status_code}

    def done(self, action: dict[str, Any]) -> dict[str, Any] | None:
        """Nothing is kept of a POST that may or may not have arrived: unknown, unless none is sent.
        A retry sends it again with the same Idempotency-Key, for the receiver to drop a duplicate."""
        return None if self.url else dict(NO_WEBHOOK)


def envelope(action: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "type", "summary", "arguments", "proposed_by", "role", "decided_by", "comment", "created_at")
    return {key: action.get(key) for key in keys}


def write_atomically(path: Path, content: str) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    write_bytes_atomically(path, content.encode("utf-8"))


def write_bytes_atomically(path: Path, content: bytes) -> None:
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


def build_executors(settings: Settings) -> dict[str, Executor]:
    return {"outbox": OutboxExecutor(settings.outbox), "webhook": WebhookExecutor(settings.webhook_url)}


def require(executors: dict[str, Executor], names: list[str]) -> list[Executor]:
    unknown = [n for n in names if n not in executors]
    if unknown:
        raise ConfigError(f"Unknown executor(s) {unknown} in rules.yaml actions; known: {sorted(executors)}")
    return [executors[n] for n in names]
