"""The command line against a running copilot server (`--server` / COPILOT_URL): a rep's laptop asks
the team's server with their own key, and the command starts without the model, the index or the
database (it imports httpx and the response models, nothing else of the copilot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from copilot.errors import CopilotError

TIMEOUT_S = 60.0


class RemoteError(CopilotError):
    """The server could not be reached, or refused the request (its own message is kept)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status; None: no answer at all


class Remote:
    def __init__(self, url: str, key: str | None = None, timeout_s: float = TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.timeout_s = timeout_s

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("POST", path, json=body)

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._call("GET", path, params={k: v for k, v in (params or {}).items() if v is not None})

    def upload(self, path: str, file: Path) -> Any:
        """POST one file as a multipart upload (field "file"), named as it is on disk."""
        with file.open("rb") as handle:
            return self._call("POST", path, files={"file": (file.name, handle)})

    def download(self, path: str, params: dict[str, Any]) -> bytes:
        return self._call("GET", path, params=params, raw=True)

    def action_id(self, prefix: str) -> str:
        """The full id of the one action visible to this key whose id starts with `prefix` (as `actions list`
        shows them: the first characters)."""
        prefix = prefix.strip()
        ids = sorted({a["id"] for a in self.get("/api/actions", {"limit": 1000}) if a["id"].startswith(prefix)})
        if prefix and (prefix in ids or len(ids) == 1):
            return prefix if prefix in ids else ids[0]
        if not prefix or not ids:
            raise RemoteError(f"No action {prefix!r} among those this key may see on {self.url}")
        raise RemoteError(f"{prefix!r} is the start of several action ids: {', '.join(ids[:5])}; give more characters")

    def _call(self, method: str, path: str, raw: bool = False, **kwargs: Any) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        try:
            response = httpx.request(method, self.url + path, headers=headers, timeout=self.timeout_s, **kwargs)
        except httpx.HTTPError as exc:
            raise RemoteError(f"{self.url}: cannot reach the copilot server ({exc.__class__.__name__}: {exc})") from None
        if response.status_code >= 400:
            raise RemoteError(f"{self.url}{path}: {response.status_code} {_message(response)}", response.status_code)
        if raw:
            return response.content
        try:
            return response.json()
        except ValueError:
            raise RemoteError(f"{self.url}{path}: the answer is not JSON; is this a copilot server?") from None


def user_path(name_or_id: str, action: str) -> str:
    """/api/users/{name or id}/{action}, the name quoted whole (a Chinese name, a space)."""
    from urllib.parse import quote

    return f"/api/users/{quote(name_or_id, safe='')}/{action}"


def _message(response: Any) -> str:
    """The server's own message ({"error": {"message": ...}}), or the start of whatever it sent."""
    try:
        error = response.json().get("error") or {}
        return str(error.get("message") or error)
    except (ValueError, AttributeError):
        return response.text[:200]
