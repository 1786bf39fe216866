"""A small error hierarchy; the CLI and the API translate these at the edge.

Every error carries a stable machine `code` (the API's `type`) and an English message (CLI, logs).
`message_for("zh")` is what the web UI and Chinese callers read: the raise site's `zh=` text when
it gives one, else a Chinese text from `ZH_MESSAGES`, else the code's Chinese frame around the
English detail. Prefer `zh=` for new messages; the catalogue covers raise sites that predate it.
"""

from __future__ import annotations

import re
from typing import Any, Literal

Lang = Literal["zh", "en"]

# http_status -> code, for subclasses that do not name their own code.
STATUS_CODES = {400: "invalid_input", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                409: "conflict", 500: "config_error"}


class CopilotError(Exception):
    """Base class: the message says what went wrong and what to do."""

    http_status = 400
    code = "error"

    def __init__(self, message: str, *, zh: str | None = None) -> None:
        super().__init__(message)
        self.zh = zh

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            cls.code = STATUS_CODES.get(cls.http_status, cls.code)

    def message_for(self, lang: Lang) -> str:
        """The message in `lang`; Chinese falls back to the catalogue, then to the code's frame."""
        if lang == "en":
            return str(self)
        return self.zh or to_chinese(self.code, str(self))


class InvalidInput(CopilotError):
    """The user's input cannot be used as given."""

    code = "invalid_input"


class NotFound(CopilotError):
    http_status = 404
    code = "not_found"


class Forbidden(CopilotError):
    http_status = 403
    code = "forbidden"


class Conflict(CopilotError):
    http_status = 409
    code = "conflict"


class ConfigError(CopilotError):
    """Settings or optional dependencies are missing or wrong."""

    http_status = 500
    code = "config_error"


# Chinese ------------------------------------------------------------------------------------------
ZH_FRAMES = {
    "invalid_input": "输入有误：{detail}",
    "unauthorized": "未通过身份验证：{detail}",
    "forbidden": "没有权限：{detail}",
    "not_found": "没有找到：{detail}",
    "conflict": "操作冲突：{detail}",
    "config_error": "服务配置有误，请联系管理员：{detail}",
    "error": "出错了：{detail}",
}

# The most common messages raised without `zh=`: English pattern -> Chinese text (first match wins).
ZH_MESSAGES: list[tuple[re.Pattern[str], str]] = [(re.compile(pattern), text) for pattern, text in [
    (r"^Unknown model '(?P<model>.*)'; use one of (?P<models>.+)$", "没有模型 {model}：请使用 {models} 之一"),
    (r"^The conversation has no user message", "对话里没有可回答的用户消息"),
    (r"^The question is empty", "问题是空的：请输入想问的内容"),
    (r"^The question is (?P<n>\d+) characters long; the limit is (?P<limit>\d+)",
     "问题有 {n} 个字，超过了 {limit} 字的上限，请精简后再问"),
    (r"^Nothing to match on", "没有可匹配的信息：请给出潜在客户的行业、城市、规模或现状，或用一句话描述客户"),
    (r"^No case with id '(?P<id>[^']*)'", "没有 id 为 {id} 的案例：可先用 POST /api/cases/search 查找"),
    (r"^No knowledge item with id '(?P<id>[^']*)'", "没有 id 为 {id} 的知识条目"),
    (r"^Unknown knowledge kind '(?P<kind>[^']*)': expected one of (?P<kinds>.+)$",
     "没有知识类型 {kind}：可选 {kinds}"),
    (r"^(?P<file>.+): unsupported file type.*\(supported: (?P<supported>[^)]*)\)",
     "{file}：不支持这种文件类型（支持：{supported}）"),
]]


def to_chinese(code: str, message: str) -> str:
    """A Chinese message for an error that has only its English one."""
    for pattern, text in ZH_MESSAGES:
        if found := pattern.search(message):
            return text.format(**found.groupdict())
    return ZH_FRAMES.get(code, ZH_FRAMES["error"]).format(detail=message)


# FastAPI's own validation errors (pydantic error type -> Chinese reason; {name} reads the ctx).
ZH_REASONS = {
    "missing": "必填", "extra_forbidden": "不支持这个字段",
    "string_too_short": "至少 {min_length} 个字", "string_too_long": "最多 {max_length} 个字",
    "too_short": "至少 {min_length} 项", "too_long": "最多 {max_length} 项",
    "literal_error": "只能是 {expected}", "enum": "只能是 {expected}",
    "greater_than_equal": "不能小于 {ge}", "greater_than": "必须大于 {gt}",
    "less_than_equal": "不能大于 {le}", "less_than": "必须小于 {lt}",
    "string_type": "应为文本", "int_type": "应为整数", "int_parsing": "应为整数", "int_from_float": "应为整数",
    "float_type": "应为数字", "float_parsing": "应为数字", "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false", "list_type": "应为列表", "dict_type": "应为对象",
    "model_type": "应为对象", "model_attributes_type": "应为对象",
    "date_type": "应为日期（YYYY-MM-DD）", "date_parsing": "应为日期（YYYY-MM-DD）",
    "date_from_datetime_parsing": "应为日期（YYYY-MM-DD）", "json_invalid": "不是合法的 JSON",
}
REQUEST_PARTS = {"body", "query", "path", "header", "cookie"}


def validation_summary_zh(errors: list[dict[str, Any]], limit: int = 3) -> str:
    """'请求有误：question：至少 1 个字；role：只能是 …' from pydantic/FastAPI error dicts."""
    parts = []
    for error in errors[:limit]:
        loc = [str(p) for p in error.get("loc", ())]
        loc = loc[1:] if loc and loc[0] in REQUEST_PARTS else loc
        field = "请求体" if error.get("type") == "json_invalid" or not loc else ".".join(loc)
        template = ZH_REASONS.get(str(error.get("type")))
        ctx = {k: str(v).replace(" or ", "、") for k, v in (error.get("ctx") or {}).items()}
        try:
            reason = template.format(**ctx) if template else str(error.get("msg", "")).removeprefix("Value error, ")
        except KeyError:
            reason = str(error.get("msg", ""))
        parts.append(f"{field}：{reason}")
    more = f"（另有 {len(errors) - limit} 处）" if len(errors) > limit else ""
    return "请求有误：" + ("；".join(parts) or "格式不对") + more
