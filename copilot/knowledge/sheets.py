"""Spreadsheets in and out for the knowledge items (FAQs, peer cases, playbooks).

Teams keep their FAQ lists and case libraries in Excel, not YAML. A sheet is read as a `Table`
(header row + data rows with their spreadsheet row numbers), its kind is recognised from the
headers (Chinese or English), and each row becomes a validated item. A bad row is reported as
`file:row:column: message` and skipped; the rest of the sheet still loads.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from copilot.errors import InvalidInput
from copilot.knowledge.schema import Case, Faq, Playbook, Result

Kind = Literal["faq", "case", "playbook"]
Item = Faq | Case | Playbook
KINDS: tuple[Kind, ...] = ("faq", "case", "playbook")


# ───────────────────────────── reading a file into a table ─────────────────────────────

@dataclass(frozen=True)
class Row:
    number: int  # 1-based row number as the spreadsheet shows it
    cells: tuple[str, ...]

    def cell(self, index: int) -> str:
        return self.cells[index] if index < len(self.cells) else ""


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[Row, ...]
    header_row: int = 1


def read_table(path: Path) -> Table:
    """Read the first non-empty sheet of an .xlsx file, or a .csv file, as a header row plus rows."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        rows = _xlsx_rows(path)
    elif suffix == ".csv":
        rows = _csv_rows(path)
    elif suffix == ".xls":
        raise InvalidInput(f"{path.name}: old .xls workbooks are not supported; save it as .xlsx or .csv")
    else:
        raise InvalidInput(f"{path.name}: expected an .xlsx or .csv file")
    return _table(path, rows)


def _table(path: Path, rows: Iterable[Row]) -> Table:
    non_blank = [row for row in rows if any(row.cells)]
    if not non_blank:
        raise InvalidInput(f"{path.name}: has no header row (every row is empty)")
    header, *data = non_blank
    return Table(headers=header.cells, rows=tuple(data), header_row=header.number)


def _xlsx_rows(path: Path) -> list[Row]:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, XML and key errors alike on a broken file
        raise InvalidInput(f"{path.name}: not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from exc
    try:
        for sheet in workbook.worksheets:
            rows = [Row(number, _trimmed(_cell_text(v) for v in values))
                    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1)]
            if any(row.cells for row in rows):
                return rows
        return []
    except Exception as exc:  # a workbook can open and still fail on a damaged sheet part
        raise InvalidInput(f"{path.name}: not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from exc
    finally:
        workbook.close()


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _format_number(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value).replace("\r\n", "\n").strip()


def _trimmed(cells: Iterable[str]) -> tuple[str, ...]:
    values = list(cells)
    while values and not values[-1]:
        values.pop()
    return tuple(values)


def _csv_rows(path: Path) -> list[Row]:
    text = _decode(path)
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(first_line))
    try:
        # Row numbers count records, not physical lines: a quoted cell with new lines is one row in Excel.
        return [Row(number, _trimmed(c.replace("\r\n", "\n").strip() for c in cells))
                for number, cells in enumerate(reader, start=1)]
    except csv.Error as exc:
        raise InvalidInput(f"{path.name}: not a readable CSV file ({exc})") from exc


def _decode(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path.name}: cannot be read ({exc.strerror or exc})") from exc
    if not raw.strip():
        raise InvalidInput(f"{path.name}: the file is empty")
    # Excel's "Unicode text" export is UTF-16; anything else holding NUL bytes is not text.
    encodings = ("utf-16",) if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else ("utf-8-sig", "gb18030")
    if encodings != ("utf-16",) and b"\x00" in raw:
        raise InvalidInput(f"{path.name}: looks like a binary file, not CSV text (an Excel file renamed .csv?)")
    # Excel on Chinese Windows saves "CSV" in GB18030/GBK; everything else writes UTF-8, often with a BOM.
    for encoding in encodings:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput(f"{path.name}: text is neither UTF-8 nor GB18030; save the sheet as 'CSV UTF-8'")


def _sniff_delimiter(header_line: str) -> str:
    # The header line is sniffed rather than the body: answers are full of commas and semicolons.
    counts = {delimiter: header_line.count(delimiter) for delimiter in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


# ───────────────────────────── columns and their aliases ─────────────────────────────

class _CellError(ValueError):
    """A cell that cannot be read as its column's type; the message is shown to the user."""


@dataclass(frozen=True)
class Column:
    field: str
    header: str  # the canonical Chinese header written on export
    aliases: tuple[str, ...]
    kind: str = "text"  # how the cell is read and written, see _READERS and _WRITERS


def _columns(*specs: tuple[str, str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(name, header, tuple(a.strip() for a in aliases.split("/")), kind)
                 for name, header, aliases, kind in specs)


COLUMNS: dict[Kind, tuple[Column, ...]] = {
    "faq": _columns(
        ("id", "编号", "编号/id/faq id/问题编号", "text"),
        ("question", "标准问", "标准问/问题/标准问题/常见问题/question/faq", "text"),
        ("variants", "相似问", "相似问/相似问题/相似问法/相似问句/扩展问/similar questions/similar question/variants",
         "list"),
        ("answer", "答案", "答案/回答/答复/标准答案/answer", "text"),
        ("category", "分类", "分类/类别/问题分类/category", "text"),
        ("product", "产品", "产品/所属产品/product", "text"),
        ("audience", "受众", "受众/可见范围/audience/visibility", "audience"),
        ("escalation", "需升级", "需升级/是否升级/升级/escalation/escalate", "bool"),
        ("standardized", "标准化", "标准化/是否标准化/standardized", "bool"),
        ("journey", "旅程", "旅程/阶段/客户旅程/journey/stage", "text"),
    ),
    "case": _columns(
        ("id", "编号", "编号/id/案例编号/case id", "text"),
        ("company", "客户名称", "客户名称/客户/公司/公司名称/company/customer", "text"),
        ("industry", "行业", "行业/industry", "text"),
        ("city", "城市", "城市/city", "text"),
        ("province", "省份", "省份/省/province", "text"),
        ("annual_fee", "年费（元）", "年费/年费用/合同年费/annual fee", "fee"),
        ("stores", "门店数", "门店数/门店数量/门店/stores/store count", "count"),
        ("products", "使用产品", "使用产品/产品/products/product", "list"),
        ("situation", "情境", "情境/标签/situation/tags", "list"),
        ("challenge", "挑战", "挑战/背景/背景挑战/challenge/background", "text"),
        ("actions", "做法", "做法/举措/actions", "list"),
        ("results", "成果", "成果/结果/results", "results"),
        ("time_to_first_value_days", "首次价值天数",
         "首次价值天数/首次价值用时/首次价值/time to first value/ttfv", "count"),
        ("journey", "旅程", "旅程/阶段/客户旅程/journey", "text"),
        ("audience", "受众", "受众/可见范围/audience", "audience"),
        ("summary", "摘要", "摘要/概述/summary", "text"),
    ),
    "playbook": _columns(
        ("id", "编号", "编号/id", "text"),
        ("title", "标题", "标题/名称/title", "text"),
        ("stage", "阶段", "阶段/公司阶段/stage", "stage"),
        ("journey", "旅程", "旅程/客户旅程/journey", "text"),
        ("roles", "角色", "角色/适用角色/roles/role", "roles"),
        ("topic", "主题", "主题/topic", "text"),
        ("summary", "摘要", "摘要/概述/summary", "text"),
        ("situations", "适用情境", "适用情境/情境/situations", "list"),
        ("steps", "步骤", "步骤/做法/steps", "list"),
        ("body", "正文", "正文/说明/body", "text"),
        ("audience", "受众", "受众/audience", "audience"),
        ("based_on", "依据", "依据/来源/based on/source", "text"),
    ),
}

# Columns a sheet must have to be recognised; every other field has a default (see _SHEET_DEFAULTS).
REQUIRED: dict[Kind, tuple[str, ...]] = {
    "faq": ("question", "answer"),
    "case": ("company", "industry", "city", "annual_fee", "products", "challenge", "actions", "results"),
    "playbook": ("title", "summary", "steps"),
}

_MODELS: dict[Kind, type[BaseModel]] = {"faq": Faq, "case": Case, "playbook": Playbook}
_KEY_FIELD: dict[Kind, str] = {"faq": "question", "case": "company", "playbook": "title"}
_ID_PREFIX: dict[Kind, str] = {"faq": "faq", "case": "case", "playbook": "pb"}

_BRACKETED = re.compile(r"[(（\[【].*?[)）\]】]")
_NOT_WORD = re.compile(r"[\W_]+")


def _header_keys(header: str) -> tuple[str, ...]:
    """A header as matched against aliases: case, spaces and punctuation ignored; a bracketed unit
    such as 年费（万元） is tried both with and without the brackets."""
    text = unicodedata.normalize("NFKC", header).casefold()
    return tuple(dict.fromkeys(_NOT_WORD.sub("", t) for t in (text, _BRACKETED.sub("", text))))


def _alias_index(kind: Kind) -> dict[str, Column]:
    return {key: column for column in COLUMNS[kind] for alias in (column.header, *column.aliases)
            for key in _header_keys(alias)}


def _map_headers(headers: Sequence[str], kind: Kind) -> tuple[dict[str, int], list[str]]:
    """Field -> column index, and the headers that map to nothing (a second column for a field
    already taken is unused too, so it is reported rather than silently merged)."""
    index = _alias_index(kind)
    mapped: dict[str, int] = {}
    unknown: list[str] = []
    for position, header in enumerate(headers):
        if not header:
            continue
        column = next((index[k] for k in _header_keys(header) if k in index), None)
        if column is None or column.field in mapped:
            unknown.append(header)
        else:
            mapped[column.field] = position
    return mapped, unknown


def detect_kind(headers: Sequence[str]) -> Kind | None:
    """Recognise what a sheet holds from its header row; None when no kind's required columns are all there."""
    fits = []
    for kind in KINDS:
        mapped, _ = _map_headers(headers, kind)
        if all(name in mapped for name in REQUIRED[kind]):
            fits.append((len(mapped), -KINDS.index(kind), kind))
    return max(fits)[2] if fits else None


def expected_columns(kind: Kind) -> list[str]:
    """The canonical headers a sheet of this kind must have, for "not a recognised sheet" messages."""
    by_field = {column.field: column.header for column in COLUMNS[kind]}
    return [by_field[name] for name in REQUIRED[kind]]


# ───────────────────────────── reading cells ─────────────────────────────

_STRONG_SEPARATOR = re.compile(r"[|｜\n]")
_WEAK_SEPARATOR = re.compile(r"[；;]")


def split_values(text: str) -> list[str]:
    """Split a multi-value cell on | ｜ ； ; or new lines (never on commas: answers are full of them).

    When a cell uses | or new lines, semicolons inside it stay: "判断 PMF；如果是，暂停扩张 | 复盘" is
    two steps, the first of which is one Chinese sentence with a clause break."""
    separator = _STRONG_SEPARATOR if _STRONG_SEPARATOR.search(text) else _WEAK_SEPARATOR
    return [part.strip() for part in separator.split(text) if part.strip()]


_TRUE = {"是", "yes", "true", "1", "y", "对"}
_FALSE = {"否", "no", "false", "0", "n", "不"}


def parse_bool(text: str) -> bool:
    token = unicodedata.normalize("NFKC", text).strip().casefold()
    if token in _TRUE:
        return True
    if token in _FALSE:
        return False
    raise _CellError(f"expected 是/否 (yes/no), got {text!r}")


_AUDIENCES = {"公开": "public", "public": "public", "对外": "public", "内部": "internal", "internal": "internal"}


def parse_audience(text: str) -> str:
    audience = _AUDIENCES.get(text.strip().casefold())
    if audience is None:
        raise _CellError(f"expected 公开/public or 内部/internal, got {text!r}")
    return audience


_ROLES = {"sales": "sales", "销售": "sales", "csm": "csm", "cs": "csm", "客户成功": "csm", "客户成功经理": "csm",
          "support": "support", "客服": "support", "支持": "support", "技术支持": "support"}


def parse_roles(text: str) -> list[str]:
    # Role names hold no commas or spaces, so "sales, csm" and "销售、客户成功" split too; an unknown
    # name is passed on for the model to reject with the list of valid roles.
    tokens = [t for part in split_values(text) for t in re.split(r"[,，、\s]+", part) if t]
    return [_ROLES.get(t.casefold(), t) for t in tokens]


def _parse_stage(text: str) -> str:
    return text.upper() if text.isascii() else text


_AMOUNT = re.compile(r"^[¥￥]?\s*(?P<number>-?\d+(?:\.\d+)?)\s*(?P<rest>\D*)$")


def _parse_amount(text: str, header: str) -> float:
    """A number with an optional unit after it: 180,000 / 18万 / 1.8万元 / 32家 / 30天.
    A 万 in the cell, or else in the header (年费（万元）), means ×10000."""
    compact = unicodedata.normalize("NFKC", text).replace(",", "").replace(" ", "").replace("−", "-")
    match = _AMOUNT.match(compact)
    if not match:
        raise _CellError(f"expected a number such as 180000 or 18万, got {text!r}")
    scale = 10000 if match["rest"].startswith("万") or (not match["rest"] and "万" in header) else 1
    return float(match["number"]) * scale


def _parse_fee(text: str, header: str) -> int:
    return round(_parse_amount(text, header))  # yuan; a fraction of a yuan says nothing about size


def _parse_count(text: str, header: str) -> int:
    value = _parse_amount(text, header)
    if value != int(value):
        raise _CellError(f"expected a whole number, got {text!r}")
    return int(value)


# Full-width digits and signs typed by a Chinese input method read as their ASCII twins.
_FULL_WIDTH = str.maketrans("０１２３４５６７８９．％－＋−", "0123456789.%-+-")
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
# A unit holds no digits or spaces, so the number before the arrow is the last one before it:
# "45天会员流失率 12%→5%" keeps 45天会员流失率 as the metric.
_UNIT = r"[^\d\s→>|:：]*?"
# "对账时间从每天2小时降到15分钟": a 每… between 从 and the number says per what (kept in the metric).
_CHANGE = re.compile(
    rf"^(?P<metric>.+?)\s*[:：]?\s*(?:从\s*(?P<per>每[^\d\s→>|:：]{{0,3}}?)?\s*)?(?P<before>{_NUMBER})\s*(?P<u1>{_UNIT})\s*"
    rf"(?:→|->|=>|⇒|➝|—>|变为|(?:[升降增减]|提升|提高|上升|增长|增加|下降|降低|减少)?[到至])\s*"
    rf"(?P<after>{_NUMBER})\s*(?P<u2>{_UNIT})$")
_LEVEL = re.compile(rf"^(?P<metric>.+?)\s*[:：]?\s*(?P<after>{_NUMBER})\s*(?P<u2>{_UNIT})$")


# Units of one quantity that a result may mix ("对账时间 2小时→15分钟", "月利润 8000元→1.2万元"):
# unit -> (quantity, size in the quantity's smallest unit). Both sides are put in the smaller unit,
# so that the change between them is computed on like numbers.
_UNIT_SIZES: dict[str, tuple[str, int]] = {
    "秒": ("time", 1), "秒钟": ("time", 1), "分钟": ("time", 60), "小时": ("time", 3600),
    "个小时": ("time", 3600), "天": ("time", 86400), "日": ("time", 86400), "周": ("time", 7 * 86400),
    "个月": ("time", 30 * 86400), "年": ("time", 365 * 86400),
    "元": ("money", 1), "万元": ("money", 10**4), "亿元": ("money", 10**8),
}


def parse_result(entry: str) -> Result:
    """One outcome: "复购率 18%→31%", "复购率从18%到31%", "客单价 45元 -> 52元" or "会员数 12000"."""
    text = entry.strip().translate(_FULL_WIDTH)
    match = _CHANGE.match(text) or _LEVEL.match(text)
    if not match:
        raise _CellError(f"cannot read result {entry!r}; write it like 复购率 18%→31% or 会员数 12000")
    before_text = match.groupdict().get("before")
    before = float(before_text) if before_text is not None else None
    after = float(match["after"])
    before_unit, after_unit = match.groupdict().get("u1") or "", match["u2"] or ""
    per = match.groupdict().get("per")
    metric = f"{match['metric'].strip()}（{per}）" if per else match["metric"].strip()
    if before_unit and after_unit and before_unit != after_unit:
        return _in_one_unit(entry, metric, before, before_unit, after, after_unit)
    return Result(metric=metric, before=before, after=after, unit=after_unit or before_unit)


def _in_one_unit(entry: str, metric: str, before: float | None, before_unit: str, after: float,
                 after_unit: str) -> Result:
    quantity, before_size = _UNIT_SIZES.get(before_unit, ("", 0))
    other, after_size = _UNIT_SIZES.get(after_unit, ("", 0))
    if not quantity or quantity != other:
        raise _CellError(f"result {entry!r} has two different units: {before_unit} and {after_unit}")
    size = min(before_size, after_size)
    unit = before_unit if size == before_size else after_unit

    def scaled(value: float, value_size: int) -> float:
        return round(value * value_size / size, 6)  # 0.3万元 is 3000 yuan, not 2999.9999999999995

    return Result(metric=metric, before=None if before is None else scaled(before, before_size),
                  after=scaled(after, after_size), unit=unit)



def parse_results(text: str) -> list[Result]:
    return [parse_result(entry) for entry in split_values(text)]


_READERS: dict[str, Callable[[str, str], Any]] = {
    "text": lambda text, header: text,
    "list": lambda text, header: split_values(text),
    "bool": lambda text, header: parse_bool(text),
    "audience": lambda text, header: parse_audience(text),
    "roles": lambda text, header: parse_roles(text),
    "stage": lambda text, header: _parse_stage(text),
    "fee": _parse_fee,
    "count": _parse_count,
    "results": lambda text, header: parse_results(text),
}


# ───────────────────────────── rows to items ─────────────────────────────

@dataclass(frozen=True)
class RowError:
    file: str
    row: int
    column: str  # the header as written in the sheet, or "-" when the whole row is at fault
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row}:{self.column}: {self.message}"


@dataclass
class SheetLoad:
    items: list[Item] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # item id -> its row number in the sheet


def _fill_faq(values: dict[str, Any]) -> None:
    values.setdefault("category", "未分类")


def _fill_case(values: dict[str, Any]) -> None:
    # The caller resolves the province from the city with the gazetteer; the model needs a string.
    values.setdefault("province", "")
    if "summary" not in values and {"company", "industry", "challenge"} <= values.keys():
        # The headline result goes in too: a peer case is shown by its summary, and what it
        # achieved is what a sales rep quotes.
        results = values.get("results") or []
        outcome = f"；{format_result(results[0])}" if results else ""
        values["summary"] = f"{values['company']}（{values['industry']}）：{values['challenge']}{outcome}"


def _fill_playbook(values: dict[str, Any]) -> None:
    # GTM and 价值兑现 are the most common stage and journey among the pack's playbooks; a sheet
    # without those columns is most likely a list of go-to-market practices.
    values.setdefault("stage", "GTM")
    values.setdefault("journey", "价值兑现")
    # A practice that names no role is shown to every frontline role rather than to none.
    values.setdefault("roles", ["sales", "csm", "support"])
    values.setdefault("topic", "未分类")
    values.setdefault("body", "")


_SHEET_DEFAULTS: dict[Kind, Callable[[dict[str, Any]], None]] = {
    "faq": _fill_faq, "case": _fill_case, "playbook": _fill_playbook}


def derive_id(kind: Kind, key_text: str) -> str:
    """A stable id from the row's key text (question, company or title), so re-importing an
    edited sheet keeps the ids of rows whose key did not change."""
    normalised = _NOT_WORD.sub("", unicodedata.normalize("NFKC", key_text).casefold())
    return f"{_ID_PREFIX[kind]}-{hashlib.sha1(normalised.encode('utf-8')).hexdigest()[:10]}"


@dataclass(frozen=True)
class _Sheet:
    """What rows_to_items needs while walking the rows of one sheet."""

    kind: Kind
    source: str
    headers: tuple[str, ...]
    mapped: dict[str, int]

    def header_for(self, name: str) -> str:
        if name in self.mapped:
            return self.headers[self.mapped[name]]
        return next((c.header for c in COLUMNS[self.kind] if c.field == name), "-")

    def error(self, row: Row, name: str, message: str) -> RowError:
        return RowError(self.source, row.number, self.header_for(name), message)


def rows_to_items(table: Table, kind: Kind, source_name: str) -> SheetLoad:
    """Turn a table into validated items; a bad row is reported and skipped, blank rows are ignored."""
    mapped, unknown = _map_headers(table.headers, kind)
    sheet = _Sheet(kind, source_name, table.headers, mapped)
    missing = [name for name in REQUIRED[kind] if name not in mapped]
    if missing:
        raise InvalidInput(f"{source_name}: missing columns for a {kind} sheet: "
                           f"{', '.join(sheet.header_for(m) for m in missing)}")
    load = SheetLoad(unknown_columns=unknown)
    first_row_of: dict[str, int] = {}
    for row in table.rows:
        item = _row_item(sheet, row, load.errors)
        if item is None:
            continue
        if item.id in first_row_of:
            load.errors.append(sheet.error(row, "id" if "id" in mapped else _KEY_FIELD[kind],
                                           f"duplicate id {item.id!r} (first on row {first_row_of[item.id]}); "
                                           "row skipped"))
            continue
        first_row_of[item.id] = row.number
        load.items.append(item)
    load.rows = first_row_of
    return load


def _row_item(sheet: _Sheet, row: Row, errors: list[RowError]) -> Item | None:
    cells = {name: row.cell(position) for name, position in sheet.mapped.items()}
    if not any(cells.values()):
        return None
    values, cell_errors = _read_cells(sheet, row, cells)
    if cell_errors:
        errors.extend(cell_errors)
        return None
    _SHEET_DEFAULTS[sheet.kind](values)
    key = values.get(_KEY_FIELD[sheet.kind])
    if key and not values.get("id"):
        values["id"] = derive_id(sheet.kind, key)
    try:
        return _MODELS[sheet.kind](**values)  # type: ignore[return-value]
    except ValidationError as exc:
        errors.extend(sheet.error(row, str(err["loc"][0]) if err["loc"] else "-", _message(err))
                      for err in exc.errors())
        return None


def _read_cells(sheet: _Sheet, row: Row, cells: dict[str, str]) -> tuple[dict[str, Any], list[RowError]]:
    # An empty cell is left out, so the model's default (or the sheet default) applies.
    columns = {c.field: c for c in COLUMNS[sheet.kind]}
    values: dict[str, Any] = {}
    errors: list[RowError] = []
    for name, text in cells.items():
        if not text:
            continue
        try:
            values[name] = _READERS[columns[name].kind](text, sheet.header_for(name))
        except _CellError as exc:
            errors.append(sheet.error(row, name, str(exc)))
    return values, errors


def _message(err: Any) -> str:
    return "required value is empty" if err["type"] == "missing" else err["msg"]


def load_sheet(path: Path, kind: Kind | None = None) -> SheetLoad:
    """Read a sheet, recognise its kind unless given, and turn its rows into items."""
    table = read_table(path)
    kind = kind or detect_kind(table.headers)
    if kind is None:
        expected = "; ".join(f"{k}: {', '.join(expected_columns(k))}" for k in KINDS)
        raise InvalidInput(f"{path.name}: not a recognised sheet: expected columns ({expected}); "
                           f"found {', '.join(h for h in table.headers if h) or 'none'}")
    return rows_to_items(table, kind, path.name)


# ───────────────────────────── writing ─────────────────────────────

def _format_number(value: float) -> str:
    # Decimal keeps 0.00001 from turning into 1e-05, which the reader would not take back.
    return format(Decimal(repr(float(value))).normalize(), "f")


def format_result(result: Result) -> str:
    after = f"{_format_number(result.after)}{result.unit}"
    if result.before is None:
        return f"{result.metric} {after}"
    return f"{result.metric} {_format_number(result.before)}{result.unit}→{after}"


def join_values(values: Sequence[str]) -> str:
    joined = " | ".join(values)
    # A lone value with a semicolon would be split on it when read back; a trailing | tells the
    # reader that | is the separator in this cell (see split_values).
    if len(values) == 1 and _WEAK_SEPARATOR.search(joined):
        joined += " |"
    return joined


_WRITERS: dict[str, Callable[[Any], Any]] = {
    "text": lambda value: value,
    "list": join_values,
    "roles": join_values,
    "bool": lambda value: "是" if value else "否",
    "audience": lambda value: "公开" if value == "public" else "内部",
    "stage": lambda value: value,
    "fee": lambda value: value,
    "count": lambda value: value,
    "results": lambda results: " | ".join(format_result(r) for r in results),
}


def _item_cells(kind: Kind, item: Item) -> list[Any]:
    return [None if (value := getattr(item, column.field)) is None else _WRITERS[column.kind](value)
            for column in COLUMNS[kind]]


def write_table(kind: Kind, items: Iterable[Item], path: Path) -> None:
    """Write items to .xlsx or .csv (UTF-8 with BOM, so Excel opens it) under canonical Chinese headers."""
    headers = [column.header for column in COLUMNS[kind]]
    _write_rows(path, [headers, *(_item_cells(kind, item) for item in items)], sheet_title=kind)


def write_template(kind: Kind, path: Path) -> None:
    """Write an empty sheet of this kind: the canonical header row only."""
    _write_rows(path, [[column.header for column in COLUMNS[kind]]], sheet_title=kind)


def _write_rows(path: Path, rows: list[list[Any]], sheet_title: str) -> None:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        _write_xlsx(path, rows, sheet_title)
    elif suffix == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            csv.writer(handle).writerows([["" if v is None else v for v in row] for row in rows])
    else:
        raise InvalidInput(f"{path.name}: expected an .xlsx or .csv file name")


def _write_xlsx(path: Path, rows: list[list[Any]], sheet_title: str) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = sheet_title
    for row in rows:
        sheet.append(row)
    for row in sheet.iter_rows():
        for cell in row:
            # openpyxl stores a string that starts with "=" as a formula; an answer is never one.
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"
    sheet.freeze_panes = "A2"
    workbook.save(path)
