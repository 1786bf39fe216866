"""A company's CRM and usage exports in: an accounts sheet (one account per row) and an activity
sheet (one account-month per row), recognised from their headers, Chinese or English.

A bad row is reported as `file:row:column: message` and skipped; the rest of the sheet loads.
Importing is an upsert: changed accounts are replaced, accounts missing from the sheet are kept
(a CRM export is often a filtered view, not the whole book).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from copilot import geo
from copilot.accounts.models import Account, Activity, Contact
from copilot.accounts.store import AccountStore, name_key
from copilot.errors import InvalidInput
from copilot.knowledge.importer import SheetReport
from copilot.knowledge.items import SheetChanges
from copilot.knowledge.sheets import (
    Row,
    RowError,
    Table,
    parse_bool,
    read_table,
    split_values,
)
from copilot.rules import Rules

SheetKind = Literal["accounts", "activity"]


@dataclass(frozen=True)
class Column:
    field: str
    header: str  # canonical Chinese header, written on export
    aliases: tuple[str, ...]
    kind: str = "text"  # see _READERS


def _columns(*specs: tuple[str, str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(f, h, tuple(a.strip() for a in aliases.split("/")), k) for f, h, aliases, k in specs)


COLUMNS: dict[SheetKind, tuple[Column, ...]] = {
    "accounts": _columns(
        ("id", "客户编号", "客户编号/客户id/编号/id/account id/customer id", "text"),
        ("name", "客户名称", "客户名称/客户/公司/公司名称/客户全称/account name/account/customer/company", "text"),
        ("aliases", "简称", "简称/别名/客户简称/alias/aliases", "list"),
        ("industry", "行业", "行业/industry", "text"),
        ("city", "城市", "城市/city", "text"),
        ("province", "省份", "省份/省/province", "text"),
        ("annual_fee", "年费（元）", "年费/合同金额/年费用/合同年费/arr/annual fee/acv", "fee"),
        ("tier", "规模", "规模/分层/客户分层/客户规模/tier/segment", "text"),
        ("signed_on", "签约日期", "签约日期/签约时间/签约日/signed/signed on/sign date", "date"),
        ("renews_on", "续费日期", "续费日期/续约日期/到期日/到期日期/合同到期日/renewal date/renews on/renewal", "date"),
        ("csm", "客户成功", "客户成功/客户成功经理/csm/负责人", "text"),
        ("sales", "销售", "销售/销售负责人/sales/ae", "text"),
        ("products", "产品", "产品/使用产品/products/product", "list"),
        ("contact", "联系人", "联系人/联系人姓名/contact/contact name", "text"),
        ("contact_title", "联系人职位", "联系人职位/职位/contact title/title", "text"),
        ("contact_phone", "电话", "电话/联系电话/手机/phone", "text"),
        ("contact_email", "邮箱", "邮箱/电子邮箱/email/e-mail", "text"),
        ("outcome", "续费结果", "续费结果/续约结果/outcome/renewal outcome", "outcome"),
        ("sample", "示例数据", "示例数据/示例/sample", "bool"),
    ),
    "activity": _columns(
        ("account_id", "客户编号", "客户编号/客户id/编号/id/account id/customer id", "text"),
        ("account", "客户名称", "客户名称/客户/公司/公司名称/account name/account/customer/company", "text"),
        ("month", "月份", "月份/月/统计月份/month", "month"),
        ("active_users", "活跃用户", "活跃用户/活跃用户数/active users", "count"),
        ("active_stores", "活跃门店", "活跃门店/活跃门店数/active stores", "count"),
        ("logins", "登录次数", "登录次数/登录/logins", "count"),
        ("feature_adoption", "功能使用率", "功能使用率/核心功能使用率/adoption/feature adoption", "share"),
        ("tickets", "工单数", "工单数/工单/tickets", "count"),
        ("nps", "NPS", "nps/满意度/净推荐值", "number"),
        ("milestones_done", "完成里程碑", "完成里程碑/已完成里程碑/milestones done", "count"),
        ("milestones_late", "延期里程碑", "延期里程碑/milestones late", "count"),
    ),
}
# An accounts sheet names the account and at least one CRM column a case or FAQ sheet lacks.
_ACCOUNT_MARKERS = {"id", "renews_on", "signed_on", "csm", "sales", "tier", "outcome", "contact"}
_MEASURES = {c.field for c in COLUMNS["activity"]} - {"account_id", "account", "month"}

_BRACKETED = re.compile(r"[(（\[【].*?[)）\]】]")
_NOT_WORD = re.compile(r"[\W_]+")


class _CellError(ValueError):
    """A cell that cannot be read as its column's type; the message is shown to the user."""


def _header_keys(header: str) -> tuple[str, ...]:
    text = unicodedata.normalize("NFKC", header).casefold()
    return tuple(dict.fromkeys(_NOT_WORD.sub("", t) for t in (text, _BRACKETED.sub("", text))))


def map_headers(headers: Sequence[str], kind: SheetKind) -> tuple[dict[str, int], list[str]]:
    """Field -> column index, and the headers that map to nothing."""
    index = {key: c for c in COLUMNS[kind] for alias in (c.header, *c.aliases) for key in _header_keys(alias)}
    mapped: dict[str, int] = {}
    unknown: list[str] = []
    for position, header in enumerate(headers):
        column = next((index[k] for k in _header_keys(header) if k in index), None) if header else None
        if column is None or column.field in mapped:
            if header:
                unknown.append(header)
        else:
            mapped[column.field] = position
    return mapped, unknown


def detect_headers(headers: Sequence[str]) -> SheetKind | None:
    activity, _ = map_headers(headers, "activity")
    if "month" in activity and {"account_id", "account"} & activity.keys() and _MEASURES & activity.keys():
        return "activity"
    accounts, _ = map_headers(headers, "accounts")
    if "name" in accounts and _ACCOUNT_MARKERS & accounts.keys():
        return "accounts"
    return None


def detect_account_sheet(path: Path) -> SheetKind | None:
    """"accounts" or "activity" from the header row; None for any other sheet or an unreadable file."""
    try:
        return detect_headers(read_table(path).headers)
    except InvalidInput:
        return None  # the knowledge importer reports the unreadable file


# Cells --------------------------------------------------------------------------------------------
_FULL_WIDTH = str.maketrans("０１２３４５６７８９．％－，", "0123456789.%-,")
_AMOUNT = re.compile(r"^[¥￥]?(?P<number>\d+(?:\.\d+)?)(?P<rest>\D*)$")
_DATE = re.compile(r"^(?P<y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*日?(?:[T\s].*)?$")
_MONTH = re.compile(r"^(?P<y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*月?(?:\s*[-/.]?\s*\d{1,2}\s*日?)?(?:[T\s].*)?$")
_EXCEL_EPOCH = date(1899, 12, 30)
_OUTCOMES = {"已续费": "renewed", "续费": "renewed", "已续约": "renewed", "续约": "renewed", "renewed": "renewed",
             "流失": "churned", "已流失": "churned", "未续费": "churned", "未续约": "churned", "churned": "churned"}


def _compact(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_FULL_WIDTH).replace(",", "").replace(" ", "")


def parse_amount(text: str, header: str = "") -> float:
    """180000 / 180,000 / 18万 / 1.8万元; a 万 in the cell, or else in the header, means ×10000."""
    match = _AMOUNT.match(_compact(text))
    if not match:
        raise _CellError(f"expected a number such as 180000 or 18万, got {text!r}")
    scale = 10000 if match["rest"].startswith("万") or (not match["rest"] and "万" in header) else 1
    return float(match["number"]) * scale


def parse_date(text: str) -> date:
    """2026-03-01, 2026/3/1, 2026年3月1日, an Excel date, or an Excel day number such as 46082."""
    compact = unicodedata.normalize("NFKC", text).strip()
    if compact.isdigit() and 20000 <= int(compact) <= 80000:
        return _EXCEL_EPOCH + timedelta(days=int(compact))
    match = _DATE.match(compact)
    try:
        if match:
            return date(int(match["y"]), int(match["m"]), int(match["d"]))
    except ValueError:
        pass
    raise _CellError(f"expected a date such as 2026-03-01 or 2026年3月1日, got {text!r}")


def parse_month(text: str) -> str:
    """2026-03, 2026/3, 2026年3月 or a date -> "2026-03"."""
    compact = unicodedata.normalize("NFKC", text).strip()
    if compact.isdigit() and len(compact) != 4:
        day = parse_date(compact)
        return f"{day.year:04d}-{day.month:02d}"
    match = _MONTH.match(compact)
    if not match or not 1 <= int(match["m"]) <= 12:
        raise _CellError(f"expected a month such as 2026-03 or 2026年3月, got {text!r}")
    return f"{int(match['y']):04d}-{int(match['m']):02d}"


def parse_share(text: str) -> float:
    """45% or 0.45 -> 0.45; a bare number above 1 is read as a percentage (45 -> 0.45)."""
    compact = _compact(text)
    try:
        value = float(compact.removesuffix("%"))
    except ValueError:
        raise _CellError(f"expected a share such as 45% or 0.45, got {text!r}") from None
    return value / 100 if compact.endswith("%") or value > 1 else value


def _count(text: str, header: str) -> int:
    value = parse_amount(text, header)
    if value != int(value):
        raise _CellError(f"expected a whole number, got {text!r}")
    return int(value)


def _number(text: str, header: str) -> float:
    try:
        return float(_compact(text))
    except ValueError:
        raise _CellError(f"expected a number, got {text!r}") from None


def _outcome(text: str, header: str) -> str:
    found = _OUTCOMES.get(unicodedata.normalize("NFKC", text).strip().casefold())
    if found is None:
        raise _CellError(f"expected 已续费/renewed or 流失/churned, got {text!r}")
    return found


def _bool(text: str) -> bool:
    try:
        return parse_bool(text)
    except ValueError as exc:
        raise _CellError(str(exc)) from None


_READERS: dict[str, Callable[[str, str], Any]] = {
    "text": lambda text, header: text,
    "list": lambda text, header: split_values(text),
    "fee": lambda text, header: round(parse_amount(text, header)),
    "count": _count,
    "number": _number,
    "share": lambda text, header: parse_share(text),
    "date": lambda text, header: parse_date(text),
    "month": lambda text, header: parse_month(text),
    "outcome": _outcome,
    "bool": lambda text, header: _bool(text),
}


# Rows ---------------------------------------------------------------------------------------------
def account_id(name: str) -> str:
    """A stable id from the account's name (either script), so a re-import keeps it."""
    return f"acct-{hashlib.sha1(name_key(name).encode('utf-8')).hexdigest()[:10]}"


@dataclass(frozen=True)
class _Sheet:
    kind: SheetKind
    source: str
    headers: tuple[str, ...]
    mapped: dict[str, int]

    def header_for(self, name: str) -> str:
        if name in self.mapped:
            return self.headers[self.mapped[name]]
        return next((c.header for c in COLUMNS[self.kind] if c.field == name), "-")

    def error(self, row: Row, name: str, message: str) -> RowError:
        return RowError(self.source, row.number, self.header_for(name), message)

    def cells(self, row: Row, errors: list[RowError]) -> dict[str, Any] | None:
        """The row's non-empty cells read as their types; None for a blank or bad row."""
        texts = {name: row.cell(position) for name, position in self.mapped.items()}
        if not any(texts.values()):
            return None
        columns = {c.field: c for c in COLUMNS[self.kind]}
        values: dict[str, Any] = {}
        bad = False
        for name, text in texts.items():
            if not text:
                continue
            try:
                values[name] = _READERS[columns[name].kind](text, self.header_for(name))
            except _CellError as exc:
                errors.append(self.error(row, name, str(exc)))
                bad = True
        return None if bad else values

    def build(self, model: type, values: dict[str, Any], row: Row, errors: list[RowError]) -> Any:
        try:
            return model(**values)
        except ValidationError as exc:
            errors.extend(self.error(row, str(e["loc"][0]) if e["loc"] else "-",
                                     "required value is empty" if e["type"] == "missing" else e["msg"])
                          for e in exc.errors())
            return None


@dataclass
class AccountLoad:
    accounts: list[Account]
    errors: list[RowError]
    notes: list[str]
    unknown_columns: list[str]


def rows_to_accounts(table: Table, source: str, rules: Rules) -> AccountLoad:
    """One account per row; a second row for the same account adds its contact (one contact per row)."""
    mapped, unknown = map_headers(table.headers, "accounts")
    sheet = _Sheet("accounts", source, table.headers, mapped)
    if "name" not in mapped:
        raise InvalidInput(f"{source}: an accounts sheet needs a 客户名称 (account name) column")
    load = AccountLoad([], [], [], unknown)
    by_id: dict[str, Account] = {}
    for row in table.rows:
        values = sheet.cells(row, load.errors)
        if values is None:
            continue
        contact = _contact(values)
        values.setdefault("id", account_id(values["name"]) if values.get("name") else "")
        if values["id"] in by_id:
            _add_contact(by_id[values["id"]], contact)
            continue
        notes = _fill_account(values, rules)
        account = sheet.build(Account, {**values, "contacts": [contact] if contact else []}, row, load.errors)
        if account is not None:
            by_id[account.id] = account
            load.notes.extend(f"{source}:{row.number}:{note}" for note in notes)
    load.accounts = list(by_id.values())
    return load


def _contact(values: dict[str, Any]) -> Contact | None:
    name = values.pop("contact", "")
    fields = {k: values.pop(f"contact_{k}", "") for k in ("title", "phone", "email")}
    return Contact(name=name, **fields) if name else None


def _add_contact(account: Account, contact: Contact | None) -> None:
    if contact and contact not in account.contacts:
        account.contacts.append(contact)


def _fill_account(values: dict[str, Any], rules: Rules) -> list[str]:
    """Province from the city, tier from the fee; returns notes on what could not be filled."""
    notes = []
    city = values.get("city", "")
    place = geo.lookup(city) if city else None
    if place is not None and place.level != "province":
        values["city"] = place.name  # 杭州市 and 杭州 are one city
    if city and not values.get("province"):
        province = place.province if place else rules.province_for_city(city)
        if province:
            values["province"] = province
        else:
            notes.append(f"城市: unknown city {city!r}: province left empty")
    if values.get("annual_fee") is not None and not values.get("tier"):
        values["tier"] = rules.tier_for_fee(values["annual_fee"])
    return notes


def rows_to_activity(table: Table, source: str, resolve: Callable[[str], str | None]) -> tuple[list[Activity], list[RowError]]:
    """One account-month per row; `resolve` maps an id, name or alias to a known account id."""
    mapped, _ = map_headers(table.headers, "activity")
    sheet = _Sheet("activity", source, table.headers, mapped)
    rows: list[Activity] = []
    errors: list[RowError] = []
    for row in table.rows:
        values = sheet.cells(row, errors)
        if values is None:
            continue
        given = values.pop("account_id", "") or values.pop("account", "")
        values.pop("account", None)
        found = resolve(given) if given else None
        if found is None:
            column = "account_id" if "account_id" in mapped else "account"
            errors.append(sheet.error(row, column, f"unknown account {given!r}: import it in the accounts sheet first"
                                      if given else "required value is empty"))
            continue
        activity = sheet.build(Activity, {**values, "account_id": found}, row, errors)
        if activity is not None:
            rows.append(activity)
    return rows, errors


# Importing ----------------------------------------------------------------------------------------
def import_account_sheet(path: Path, given: str, kind: SheetKind, store: AccountStore, rules: Rules) -> SheetReport:
    """Read one accounts or activity sheet and upsert its rows; bad rows are reported and skipped."""
    table = read_table(path)
    if kind == "accounts":
        load = rows_to_accounts(table, path.name, rules)
        changes = store.upsert_accounts(load.accounts)
        notes = [f"{given}: column {name!r} is not used (unknown header)" for name in load.unknown_columns]
        errors, notes = [str(e) for e in load.errors], notes + load.notes
    else:
        rows, row_errors = rows_to_activity(table, path.name, _resolver(store))
        changes = store.upsert_activity(rows)
        _, unknown = map_headers(table.headers, "activity")
        errors = [str(e) for e in row_errors]
        notes = [f"{given}: column {name!r} is not used (unknown header)" for name in unknown]
    added, updated, unchanged = changes
    return SheetReport(source=given, kind=kind, changes=SheetChanges(added=added, updated=updated, unchanged=unchanged),
                       errors=errors, notes=notes)


def _resolver(store: AccountStore) -> Callable[[str], str | None]:
    index = store.name_index()
    ids = {a.id for a in index.values()} | {a.id for a in store.accounts()}

    def resolve(text: str) -> str | None:
        if text in ids:
            return text
        found = index.get(name_key(text))
        return found.id if found else None

    return resolve


# Writing ------------------------------------------------------------------------------------------
def _account_cells(account: Account) -> list[Any]:
    contact = account.contacts[0] if account.contacts else Contact(name="")
    values = {**account.model_dump(), "aliases": " | ".join(account.aliases), "products": " | ".join(account.products),
              "contact": contact.name, "contact_title": contact.title, "contact_phone": contact.phone,
              "contact_email": contact.email,
              "outcome": {"renewed": "已续费", "churned": "流失"}.get(account.outcome or "", ""),
              "sample": "是" if account.sample else "否"}
    return [values.get(c.field) for c in COLUMNS["accounts"]]


def _activity_cells(row: Activity) -> list[Any]:
    values = {**row.model_dump(), "account": ""}
    if row.feature_adoption is not None:
        values["feature_adoption"] = f"{round(row.feature_adoption * 100, 1):g}%"
    return [values.get(c.field) for c in COLUMNS["activity"]]


def write_accounts(accounts: Sequence[Account], path: Path) -> None:
    """Accounts as an .xlsx in the import columns (one contact per account)."""
    _write_xlsx(path, "accounts", [[c.header for c in COLUMNS["accounts"]], *map(_account_cells, accounts)])


def write_activity(rows: Sequence[Activity], path: Path) -> None:
    """Activity as an .xlsx in the import columns (accounts named by id)."""
    _write_xlsx(path, "activity", [[c.header for c in COLUMNS["activity"]], *map(_activity_cells, rows)])


def _write_xlsx(path: Path, title: str, rows: list[list[Any]]) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = title
    for row in rows:
        sheet.append(row)
    sheet.freeze_panes = "A2"
    workbook.save(path)
