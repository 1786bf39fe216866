"""The command line against a running copilot server (`--server` / COPILOT_URL): a rep's laptop asks
the team's server with their own key, and the command starts without the model, the index or the
database (it imports httpx and the response models, nothing else of the copilot)."""

from __future__ import annotations

from typing import Any

from copilot.errors import CopilotError

TIMEOUT_S = 60.0


class RemoteError(CopilotError):
    """The server could not be reached, or refused the request (its own message is kept)."""


class Remote:
    def __init__(self, url: str, key: str | None = None, timeout_s: float = TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.timeout_s = timeout_s

    def post(self, path: str, body: dict[str, Any]) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        try:
            response = httpx.post(self.url + path, json=body, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise RemoteError(f"{self.url}: cannot reach the copilot server ({exc.__class__.__name__}: {exc})") from None
        if response.status_code >= 400:
            raise RemoteError(f"{self.url}{path}: {response.status_code} {_message(response)}")
        try:
            return response.json()
        except ValueError:
            raise RemoteError(f"{self.url}{path}: the answer is not JSON; is this a copilot server?") from None


def _message(response: Any) -> str:
    """The server's own message ({"error": {"message": ...}}), or the start of whatever it sent."""
    try:
        error = response.json().get("error") or {}
        return str(error.get("message") or error)
    except (ValueError, AttributeError):
        return response.text[:200]
