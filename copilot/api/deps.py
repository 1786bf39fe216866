"""Request-scoped dependencies: the copilot container and the calling principal.

Who is calling, in order: a person's key (`copilot users add`), a service key from
COPILOT_API_KEYS (one per role, for integrations), a signed-in browser session (single sign-on).
With none of them configured the server only binds to loopback (enforced at start-up) and the
one local user is admin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from copilot.errors import CopilotError, Forbidden
from copilot.service import Copilot
from copilot.users import KEY_PREFIX, default_audiences

ALL_AUDIENCES = ["public", "internal"]
# Frontline roles an asking role may speak as: a knowledge manager checks what each role is told.
ASKS_AS_ANY_ROLE = ("admin", "knowledge")
SESSION_USER = "user_id"


class Unauthorized(CopilotError):
    http_status = 401


@dataclass(frozen=True)
class Principal:
    name: str  # the person (or service key) every record names
    role: str  # sales | csm | support | knowledge | admin
    audiences: list[str] = field(default_factory=list)

    def can_act_as(self, role: str) -> bool:
        return self.role == role or self.role == "admin" or (
            self.role in ASKS_AS_ANY_ROLE and role in ("sales", "csm", "support"))

    def require_role(self, role: str) -> None:
        if not self.can_act_as(role):
            raise Forbidden(f"{self.name} has role {self.role!r} and cannot act as {role!r}",
                            zh=f"{self.name} 的角色是 {self.role}，不能以 {role} 的身份操作")


LOCAL = Principal("local", "admin", ALL_AUDIENCES)


def get_copilot(request: Request) -> Copilot:
    copilot = request.app.state.copilot
    copilot.refresh_if_changed()  # another worker may have imported or edited knowledge
    return copilot


def presented_key(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    return request.headers.get("x-api-key", "").strip()


def principal_for(copilot: Copilot, key: str, session_user: str | None = None) -> Principal | None:
    """The principal a key (or a signed-in session) stands for; None when it stands for nobody."""
    if key:
        if key.startswith(KEY_PREFIX):
            user = copilot.users.by_key(key)
            return Principal(user.name, user.role, user.audiences) if user else None
        service = copilot.settings.service_key_names().get(key)
        if service is None:
            return None
        name, role = service
        return Principal(name, role, default_audiences(role))
    if session_user:
        user = copilot.users.by_id(session_user)
        return Principal(user.name, user.role, user.audiences) if user else None
    return None


def keys_required(copilot: Copilot) -> bool:
    return bool(copilot.settings.api_keys) or copilot.users.any()


def get_principal(request: Request) -> Principal:
    copilot: Copilot = request.app.state.copilot
    key = presented_key(request)
    session_user = request.session.get(SESSION_USER) if "session" in request.scope else None
    principal = principal_for(copilot, key, session_user)
    if principal is not None:
        return principal
    if not keys_required(copilot):
        # Keyless mode: loopback only, one person on their own machine. A key sent anyway is
        # ignored (OpenAI clients always send one).
        return LOCAL
    if key:
        raise Unauthorized("Unknown or disabled key: ask an admin for a new one (copilot users key NAME)",
                           zh="密钥无效或已停用：请向管理员申请新密钥")
    raise Unauthorized("Sign in, or send your key: 'Authorization: Bearer <key>'",
                       zh="请先登录，或在请求头中带上密钥：Authorization: Bearer <key>")


def require_admin(principal: Principal) -> None:
    if principal.role != "admin":
        raise Forbidden("Only an admin can do this", zh="只有管理员可以执行此操作")


CopilotDep = Annotated[Copilot, Depends(get_copilot)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
