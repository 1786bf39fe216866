"""Request-scoped dependencies: the copilot container and the calling principal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from copilot.errors import CopilotError, Forbidden
from copilot.service import Copilot

ALL_AUDIENCES = ["public", "internal"]
# Which knowledge audiences each key role may read.
ROLE_AUDIENCES = {"admin": ALL_AUDIENCES, "sales": ALL_AUDIENCES, "csm": ALL_AUDIENCES, "support": ["public"]}


class Unauthorized(CopilotError):
    http_status = 401


@dataclass(frozen=True)
class Principal:
    name: str
    role: str  # sales | csm | support | admin
    audiences: list[str]

    def can_act_as(self, role: str) -> bool:
        return self.role in ("admin", role)

    def require_role(self, role: str) -> None:
        if not self.can_act_as(role):
            raise Forbidden(f"This API key is for role {self.role!r} and cannot act as {role!r}")


def get_copilot(request: Request) -> Copilot:
    copilot = request.app.state.copilot
    copilot.refresh_if_changed()  # another worker may have imported or edited knowledge
    return copilot


def get_principal(request: Request) -> Principal:
    keys = request.app.state.copilot.settings.api_keys
    if not keys:
        # Keyless mode is only allowed on loopback (enforced at start-up): the local user is admin.
        return Principal("local", "admin", ALL_AUDIENCES)
    header = request.headers.get("authorization", "")
    key = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else request.headers.get("x-api-key", "")
    role = keys.get(key)
    if role is None:
        raise Unauthorized("Missing or unknown API key: send 'Authorization: Bearer <key>'")
    return Principal(f"key:{key[:4]}…", role, ROLE_AUDIENCES[role])


CopilotDep = Annotated[Copilot, Depends(get_copilot)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
