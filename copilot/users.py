"""People who use the copilot: a name, a role, the knowledge audiences they may read, and a key.

A key is shown once, when it is made, and stored only as its SHA-256: keys are 256-bit random
tokens, so a fast hash is enough (a slow password hash protects guessable secrets, which these
are not) and a request is checked with one indexed lookup. The name is what every record says
did something; nothing derived from a key ever leaves the server.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import datetime, timezone
from typing import Literal, get_args

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from copilot import db
from copilot.actions import AuditLog
from copilot.errors import Conflict, InvalidInput, NotFound
from copilot.modeling import Model

UserRole = Literal["sales", "csm", "support", "knowledge", "admin"]
USER_ROLES: tuple[str, ...] = get_args(UserRole)
AUDIENCES = ("public", "internal")
# Support speaks to customers, so it reads only what may be said to them; everyone else reads all.
DEFAULT_AUDIENCES: dict[str, list[str]] = {"support": ["public"]}
ROLE_ZH = {"sales": "销售", "csm": "客户成功", "support": "客服", "knowledge": "知识管理员", "admin": "管理员"}

KEY_PREFIX = "cpk_"
# Letters, digits, CJK, and . _ - @ and spaces inside: a name fit for an audit line.
NAME_PATTERN = re.compile(r"^[\w\u4e00-\u9fff][\w\u4e00-\u9fff.@ -]{0,62}[\w\u4e00-\u9fff.]?$")


class User(Model):
    id: str
    name: str
    role: UserRole
    audiences: list[str]
    email: str | None = None
    has_key: bool
    single_sign_on: bool
    created_at: datetime
    created_by: str
    disabled_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


def default_audiences(role: str) -> list[str]:
    return list(DEFAULT_AUDIENCES.get(role, AUDIENCES))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class UserStore:
    def __init__(self, engine: Engine, audit: AuditLog) -> None:
        self.engine = engine
        self.audit = audit

    # Reading -----------------------------------------------------------------------------------
    def list(self, include_disabled: bool = True) -> list[User]:
        query = sa.select(db.users).order_by(db.users.c.created_at, db.users.c.name)
        if not include_disabled:
            query = query.where(db.users.c.disabled_at.is_(None))
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(query).mappings()]

    def any(self) -> bool:
        """Whether anyone was ever set up: from then on every request names a person. Disabled
        people count, so disabling everyone locks the server rather than opening it."""
        query = sa.select(db.users.c.id).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def get(self, name_or_id: str) -> User:
        column = db.users.c.id if _looks_like_id(name_or_id) else db.users.c.name
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(db.users).where(column == name_or_id)).mappings().first()
        if row is None:
            raise NotFound(f"No user named {name_or_id!r}: see `copilot users list`",
                           zh=f"没有名为 {name_or_id} 的用户：可用 copilot users list 查看")
        return _user(row)

    def by_key(self, key: str) -> User | None:
        """The active user holding this key, or None."""
        if not key.startswith(KEY_PREFIX):
            return None
        query = sa.select(db.users).where(db.users.c.key_hash == hash_key(key), db.users.c.disabled_at.is_(None))
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _user(row) if row else None

    def by_id(self, user_id: str) -> User | None:
        """The active user with this id (a signed-in browser session holds the id)."""
        query = sa.select(db.users).where(db.users.c.id == user_id, db.users.c.disabled_at.is_(None))
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _user(row) if row else None

    # Changing ----------------------------------------------------------------------------------
    def add(self, name: str, role: str, by: str, audiences: list[str] | None = None,
            email: str | None = None, with_key: bool = True) -> tuple[User, str | None]:
        """A new active user, and their key (shown once; None for single-sign-on-only users)."""
        name = _valid_name(name)
        _valid_role(role)
        audiences = _valid_audiences(audiences if audiences is not None else default_audiences(role))
        email = _valid_email(email)
        key = new_key() if with_key else None
        row = {"id": str(uuid.uuid4()), "name": name, "role": role, "audiences": audiences,
               "key_hash": hash_key(key) if key else None, "email": email, "oidc_subject": None,
               "created_at": _now(), "created_by": by, "disabled_at": None}
        with self.engine.begin() as conn:
            taken = conn.execute(sa.select(db.users.c.name, db.users.c.email).where(
                sa.or_(db.users.c.name == name, db.users.c.email == email) if email else db.users.c.name == name)).first()
            if taken is not None:
                what = "name" if taken.name == name else "email"
                raise Conflict(f"A user with this {what} already exists: {name if what == 'name' else email}",
                               zh=f"已有同{'名' if what == 'name' else '邮箱'}的用户：{name if what == 'name' else email}")
            conn.execute(sa.insert(db.users).values(**row))
            self.audit.record(by, "user_added", name, {"role": role, "audiences": audiences, "email": email}, conn)
        return _user(row), key

    def rotate_key(self, name_or_id: str, by: str) -> str:
        """A new key for an active user; the old one stops working at once."""
        user = self.get(name_or_id)
        if not user.active:
            raise Conflict(f"{user.name} is disabled: enable them first", zh=f"{user.name} 已停用，请先启用")
        key = new_key()
        with self.engine.begin() as conn:
            conn.execute(sa.update(db.users).where(db.users.c.id == user.id).values(key_hash=hash_key(key)))
            self.audit.record(by, "user_key_rotated", user.name, {}, conn)
        return key

    def set_active(self, name_or_id: str, active: bool, by: str) -> User:
        user = self.get(name_or_id)
        if user.active == active:
            return user
        if not active and user.role == "admin" and self._other_active_admins(user.id) == 0 and self._others_active(user.id):
            raise Conflict("This is the last active admin: make someone else admin first",
                           zh="这是最后一位启用中的管理员：请先让其他人成为管理员")
        with self.engine.begin() as conn:
            conn.execute(sa.update(db.users).where(db.users.c.id == user.id)
                         .values(disabled_at=None if active else _now()))
            self.audit.record(by, "user_enabled" if active else "user_disabled", user.name, {}, conn)
        return self.get(user.id)

    def link_single_sign_on(self, subject: str, email: str | None) -> User | None:
        """The active user this identity provider's account belongs to: known by its subject, or
        (first sign-in) by a verified email the admin registered, which then links the subject."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(db.users).where(db.users.c.oidc_subject == subject)).mappings().first()
            if row is None and email:
                row = conn.execute(sa.select(db.users).where(
                    sa.func.lower(db.users.c.email) == email.lower(), db.users.c.oidc_subject.is_(None))).mappings().first()
                if row is not None:
                    conn.execute(sa.update(db.users).where(db.users.c.id == row["id"]).values(oidc_subject=subject))
                    self.audit.record(row["name"], "user_linked", row["name"], {"email": email}, conn)
                    row = {**row, "oidc_subject": subject}
        if row is None or row["disabled_at"] is not None:
            return None
        return _user(row)

    def _other_active_admins(self, user_id: str) -> int:
        query = sa.select(sa.func.count()).select_from(db.users).where(
            db.users.c.role == "admin", db.users.c.disabled_at.is_(None), db.users.c.id != user_id)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar() or 0

    def _others_active(self, user_id: str) -> bool:
        query = sa.select(db.users.c.id).where(db.users.c.disabled_at.is_(None), db.users.c.id != user_id).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None


def _user(row) -> User:
    return User(id=row["id"], name=row["name"], role=row["role"], audiences=list(row["audiences"] or []),
                email=row["email"], has_key=row["key_hash"] is not None, single_sign_on=row["oidc_subject"] is not None,
                created_at=row["created_at"], created_by=row["created_by"], disabled_at=row["disabled_at"])


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _looks_like_id(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _valid_name(name: str) -> str:
    name = name.strip()
    if not NAME_PATTERN.match(name) or _looks_like_id(name):
        raise InvalidInput(f"Invalid user name {name!r}: 1-64 letters, digits, Chinese characters, '.', '_', '-', '@'",
                           zh=f"用户名 {name!r} 不合适：1-64 个字母、数字、汉字或 . _ - @")
    return name


def _valid_role(role: str) -> None:
    if role not in USER_ROLES:
        raise InvalidInput(f"Unknown role {role!r}: use {', '.join(USER_ROLES)}",
                           zh=f"没有角色 {role}：可用 {'、'.join(USER_ROLES)}")


def _valid_audiences(audiences: list[str]) -> list[str]:
    unknown = [a for a in audiences if a not in AUDIENCES]
    if unknown or not audiences:
        raise InvalidInput(f"Audiences must be some of {', '.join(AUDIENCES)}; got {audiences}",
                           zh=f"可读范围只能是 {'、'.join(AUDIENCES)} 中的一个或多个；收到 {audiences}")
    return sorted(set(audiences), key=AUDIENCES.index)


def _valid_email(email: str | None) -> str | None:
    if email is None or not email.strip():
        return None
    email = email.strip()
    if len(email) > 320 or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise InvalidInput(f"Invalid email {email!r}", zh=f"邮箱格式不对：{email}")
    return email
