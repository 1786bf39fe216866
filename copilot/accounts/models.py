"""The shapes every part of Insight hands over: an account (from a CRM export) and its monthly
activity (from a usage export or the API)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from copilot.modeling import Model

Tier = Literal["大型", "中型", "中小", "小微"]
Outcome = Literal["renewed", "churned"]


class Contact(Model):
    name: str
    title: str = ""
    phone: str = ""
    email: str = ""


class Account(Model):
    id: str
    name: str
    aliases: list[str] = Field(default_factory=list, description="Other names people use for it, any script")
    industry: str = ""
    city: str = ""
    province: str = ""
    annual_fee: int | None = Field(default=None, ge=0, description="Yuan per year")
    tier: Tier | None = Field(default=None, description="From the fee by the rules when not given")
    signed_on: date | None = None
    renews_on: date | None = None
    csm: str = ""
    sales: str = ""
    products: list[str] = Field(default_factory=list)
    contacts: list[Contact] = Field(default_factory=list)
    outcome: Outcome | None = Field(default=None, description="How a past renewal ended (history, for backtests)")
    sample: bool = Field(default=False, description="Invented demo data")


class Activity(Model):
    """One account's activity in one calendar month; a missing measure is None, not 0."""

    account_id: str
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")
    active_users: int | None = Field(default=None, ge=0)
    active_stores: int | None = Field(default=None, ge=0)
    logins: int | None = Field(default=None, ge=0)
    feature_adoption: float | None = Field(default=None, ge=0, le=1, description="Share of key features in use")
    tickets: int | None = Field(default=None, ge=0)
    nps: float | None = Field(default=None, ge=-100, le=100)
    milestones_done: int | None = Field(default=None, ge=0)
    milestones_late: int | None = Field(default=None, ge=0)
