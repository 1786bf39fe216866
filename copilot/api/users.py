"""People: who am I, and (admin) add, list, disable and re-key users; the admin page /users."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from pydantic import Field

from copilot.api.deps import CopilotDep, PrincipalDep, keys_required, require_admin
from copilot.modeling import Model
from copilot.users import ROLE_ZH, User, UserRole

router = APIRouter(tags=["people"])
page_router = APIRouter(include_in_schema=False)


def register(app: FastAPI) -> None:
    app.include_router(router)
    app.include_router(page_router)


class Me(Model):
    name: str
    role: str
    role_label: str
    audiences: list[str]
    signed_in: bool = Field(description="False in keyless local mode (one person on their own machine)")
    single_sign_on: bool = Field(description="Whether this server offers sign-in with the company's identity provider")


class NewUser(Model):
    name: str = Field(min_length=1, max_length=64)
    role: UserRole
    audiences: list[str] | None = Field(default=None, max_length=2,
                                        description="public / internal; default: support public only, others both")
    email: str | None = Field(default=None, max_length=320)
    key: bool = Field(default=True, description="Make a key (shown once); false for single-sign-on-only users")


class CreatedUser(Model):
    user: User
    key: str | None = Field(description="Shown only in this response; stored as a hash")


class NewKey(Model):
    key: str = Field(description="Shown only in this response; the old key stops working")


@router.get("/api/me", response_model=Me)
def me(copilot: CopilotDep, principal: PrincipalDep) -> Me:
    """The caller: name, role and what they may read."""
    return Me(name=principal.name, role=principal.role, role_label=ROLE_ZH.get(principal.role, principal.role),
              audiences=principal.audiences, signed_in=keys_required(copilot),
              single_sign_on=bool(copilot.settings.oidc_issuer))


@router.get("/api/users", response_model=list[User])
def list_users(copilot: CopilotDep, principal: PrincipalDep) -> list[User]:
    """Everyone (admin)."""
    require_admin(principal)
    return copilot.users.list()


@router.post("/api/users", response_model=CreatedUser, status_code=201)
def add_user(body: NewUser, copilot: CopilotDep, principal: PrincipalDep) -> CreatedUser:
    """Add a person (admin); the key is in this response only."""
    require_admin(principal)
    user, key = copilot.users.add(body.name, body.role, principal.name, audiences=body.audiences,
                                  email=body.email, with_key=body.key)
    return CreatedUser(user=user, key=key)


@router.post("/api/users/{user_id}/disable", response_model=User)
def disable_user(user_id: str, copilot: CopilotDep, principal: PrincipalDep) -> User:
    """Stop a person's key and sessions at once (admin)."""
    require_admin(principal)
    return copilot.users.set_active(_id(copilot, user_id), False, principal.name)


@router.post("/api/users/{user_id}/enable", response_model=User)
def enable_user(user_id: str, copilot: CopilotDep, principal: PrincipalDep) -> User:
    require_admin(principal)
    return copilot.users.set_active(_id(copilot, user_id), True, principal.name)


@router.post("/api/users/{user_id}/key", response_model=NewKey)
def rotate_key(user_id: str, copilot: CopilotDep, principal: PrincipalDep) -> NewKey:
    """A new key for a person (admin); the old one stops working."""
    require_admin(principal)
    return NewKey(key=copilot.users.rotate_key(_id(copilot, user_id), principal.name))


def _id(copilot, user_id: str) -> str:
    return copilot.users.get(user_id).id  # a clear 404 for an unknown id or name


@page_router.get("/users", response_class=HTMLResponse)
def users_page(request: Request) -> HTMLResponse:
    """The admin page; the list itself is fetched with the admin's key."""
    from copilot.api.web import _page

    return _page(request, "users.html", "users", roles=ROLE_ZH)
