"""Load and validate the knowledge pack; turn its items into indexable chunks.

A broken item is reported with its file, item id and field, and skipped: one typo in a
FAQ must not take the case library down with it. A broken key of a settings file (rules,
gazetteer, vendor, plan templates, glossary) is reported with its key path and left to its
default, or its item dropped; the rest of that file still applies.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from copilot import models, rules
from copilot.files import code_fingerprint, keep_pickle, read_pickle
from copilot.knowledge import pack_models, schema
from copilot.knowledge.pack_models import Gazetteer, Glossary, PlanTemplates, Vendor
from copilot.knowledge.schema import Case, Faq, IntentExample, Playbook
from copilot.models import Chunk
from copilot.rules import Rules

log = logging.getLogger(__name__)

PACK_DOC_PREFIX = "pack:"
# Dropping a broken key can leave its item without a required field: validate again this often.
MAX_REPAIRS = 20
M = TypeVar("M", bound=BaseModel)


def load_yaml(text: str) -> Any:
    """Parsed with libyaml's safe loader when PyYAML was built with it (~10x faster than in pure
    Python). PyYAML is imported here: a command served from the cached pack never needs it."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@dataclass(frozen=True)
class LoadIssue:
    file: str
    item: str
    field: str
    message: str

    def __str__(self) -> str:
        if self.item != "-":
            return f"{self.file}: item {self.item!r}, field {self.field!r}: {self.message}"
        return f"{self.file}: key {self.field!r}: {self.message}" if self.field != "-" else f"{self.file}: {self.message}"


@dataclass
class Pack:
    rules: Rules
    cases: list[Case] = field(default_factory=list)
    faqs: list[Faq] = field(default_factory=list)
    playbooks: list[Playbook] = field(default_factory=list)
    intents: list[IntentExample] = field(default_factory=list)
    gazetteer: Gazetteer = field(default_factory=Gazetteer)
    plan_templates: PlanTemplates = field(default_factory=PlanTemplates)
    vendor: Vendor = field(default_factory=Vendor)
    glossary: Glossary = field(default_factory=Glossary)
    issues: list[LoadIssue] = field(default_factory=list)
    # Index document of items that do not come from the YAML files (a spreadsheet's rows).
    origins: dict[str, str] = field(default_factory=dict)

    def with_items(self, cases: list[Case], faqs: list[Faq], playbooks: list[Playbook],
                   origins: dict[str, str]) -> "Pack":
        return replace(self, cases=cases, faqs=faqs, playbooks=playbooks, origins=origins)

    def industries(self) -> list[str]:
        """Every industry the knowledge knows: the gazetteer's and those of the cases."""
        known = list(self.gazetteer.industries)
        return known + sorted({c.industry for c in self.cases} - set(known))

    def case(self, case_id: str) -> Case | None:
        return next((c for c in self.cases if c.id == case_id), None)

    def domain_words(self) -> list[str]:
        """The knowledge's own words, for the tokenizer and the speller: product names and their
        short forms, glossary terms, industries and their synonyms, cities, situations, FAQ
        categories, playbook topics."""
        words: set[str] = set()
        vendor = self.vendor.vendor
        for product in self.vendor.products:
            words.update({product.name, product.name.removeprefix(vendor)} if vendor else {product.name})
        words.update(t for terms in self.glossary.terms.values() for t in terms)
        for group in (self.gazetteer.industries, self.gazetteer.situations):
            for name, synonyms in group.items():
                words.update([name, *synonyms])
        words.update(self.gazetteer.cities)
        words.update(c.industry for c in self.cases)
        words.update(f.category for f in self.faqs)
        words.update(p.topic for p in self.playbooks)
        return sorted(w for w in words if w and 2 <= len(w) <= 12)

    def question_texts(self) -> list[str]:
        """The texts that say what the knowledge is about, in the words people ask with."""
        return ([q for f in self.faqs for q in (f.question, *f.variants)]
                + [t for p in self.playbooks for t in (p.title, p.summary, *p.situations)]
                + [c.summary for c in self.cases])

    def chunks(self) -> list[Chunk]:
        """Every item as one passage; the item id is its source. An item from a spreadsheet
        belongs to that sheet's index document, the others to their YAML file's."""
        chunks = ([_case_chunk(c, self.rules) for c in self.cases]
                  + [_faq_chunk(f) for f in self.faqs]
                  + [_playbook_chunk(p) for p in self.playbooks])
        for chunk in chunks:
            chunk.doc_key = self.origins.get(chunk.id, chunk.doc_key)
        return chunks


PACK_FILES = ("gazetteer.yaml", "rules.yaml", "cases.yaml", "faqs.yaml", "playbooks.yaml", "intents.yaml",
              "plan_templates.yaml", "vendor.yaml", "glossary.yaml")


def pack_key(knowledge_dir: Path) -> str:
    """A digest of the pack's files and of the code of the models they are validated into."""
    digest = hashlib.sha256(code_fingerprint(models, rules, pack_models, schema, sys.modules[__name__]).encode())
    for name in PACK_FILES:
        path = knowledge_dir / name
        digest.update(name.encode() + (path.read_bytes() if path.exists() else b"\0missing"))
    return digest.hexdigest()[:20]


def load_pack_cached(knowledge_dir: Path, cache_dir: Path, key: str | None = None) -> Pack:
    """`load_pack`, kept as a pickle keyed by `pack_key`: a CLI command then does not parse and
    validate every item again (~0.12 s of a ~0.5 s command on the sample pack, more on a company's own)."""
    path = cache_dir / f"pack-{key or pack_key(knowledge_dir)}.pickle"
    pack = read_pickle(path, Pack)
    if pack is None:
        pack = load_pack(knowledge_dir)
        keep_pickle(path, pack)
    else:
        report_issues(pack)
    return pack


def report_issues(pack: Pack) -> None:
    """Log what was wrong in the files, as when they are read (a cached pack reports it again)."""
    for issue in pack.issues:
        log.warning("knowledge pack: %s", issue)


def load_pack(knowledge_dir: Path) -> Pack:
    issues: list[LoadIssue] = []
    gazetteer = _load_settings(knowledge_dir / "gazetteer.yaml", Gazetteer, issues)
    pack = Pack(
        rules=_load_settings(knowledge_dir / "rules.yaml", Rules, issues).with_places(gazetteer),
        cases=_load_items(knowledge_dir / "cases.yaml", "cases", Case, issues),
        faqs=_load_items(knowledge_dir / "faqs.yaml", "faqs", Faq, issues),
        playbooks=_load_items(knowledge_dir / "playbooks.yaml", "playbooks", Playbook, issues),
        intents=_load_items(knowledge_dir / "intents.yaml", "intents", IntentExample, issues),
        gazetteer=gazetteer,
        plan_templates=_load_settings(knowledge_dir / "plan_templates.yaml", PlanTemplates, issues),
        vendor=_load_settings(knowledge_dir / "vendor.yaml", Vendor, issues),
        glossary=_load_settings(knowledge_dir / "glossary.yaml", Glossary, issues),
        issues=issues,
    )
    for issue in issues:
        log.warning("knowledge pack: %s", issue)
    return pack


def _read_yaml(path: Path, issues: list[LoadIssue]) -> Any:
    if not path.exists():
        issues.append(LoadIssue(path.name, "-", "-", "file is missing"))
        return None
    import yaml

    try:
        return load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        issues.append(LoadIssue(path.name, "-", "-", f"not valid YAML: {exc}"))
        return None


def _load_settings(path: Path, model: type[M], issues: list[LoadIssue]) -> M:
    """A settings file as its model. A key that fails validation is reported and dropped, and the
    file validated again: a broken key falls back to its default, an item of a list or mapping that
    lacks a required field is left out, everything else still applies."""
    data = _read_yaml(path, issues)
    if data is None:
        return model()
    if not isinstance(data, dict):
        issues.append(LoadIssue(path.name, "-", "-", "expected a mapping of keys, defaults used"))
        return model()
    dropped: list[tuple[Any, ...]] = []
    for _ in range(MAX_REPAIRS):
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors()
        found = [(err, _present(data, err["loc"])) for err in errors]
        # An error about a key an earlier round dropped (a required field now missing) is not news.
        issues.extend(LoadIssue(path.name, "-", _dotted(err["loc"]), err["msg"]) for err, at in found
                      if not any(_related(at, gone) for gone in dropped))
        paths = {at for _, at in found}
        if () in paths:
            break
        # Outermost paths only, and later list positions first, so each drop leaves the others valid.
        outermost = [at for at in paths if not any(other != at and at[:len(other)] == other for other in paths)]
        for at in sorted(outermost, key=_position_key, reverse=True):
            _drop(data, at)
        dropped.extend(outermost)
    return model()


def _present(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The longest start of an error location that exists in the data: the key to drop."""
    node, path = data, ()
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break
        path = (*path, part)
    return path


def _drop(data: Any, path: tuple[Any, ...]) -> None:
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]


def _related(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """One path lies inside the other."""
    return a[:len(b)] == b or b[:len(a)] == a


def _position_key(path: tuple[Any, ...]) -> tuple[tuple[int, Any], ...]:
    return tuple((0, part) if isinstance(part, int) else (1, str(part)) for part in path)


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "-"


def _load_items(path: Path, key: str, model: type[BaseModel], issues: list[LoadIssue]) -> list[Any]:
    data = _read_yaml(path, issues)
    if data is None:
        return []
    raw_items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(raw_items, list):
        issues.append(LoadIssue(path.name, "-", key, f"expected a list under '{key}:'"))
        return []
    items, seen = [], set()
    for index, raw in enumerate(raw_items):
        item_name = str(raw.get("id") or raw.get("task") or f"#{index + 1}") if isinstance(raw, dict) else f"#{index + 1}"
        if not isinstance(raw, dict):
            issues.append(LoadIssue(path.name, item_name, "-", "item is not a mapping"))
            continue
        try:
            item = model(**raw)
        except ValidationError as exc:
            issues.extend(_issues(path.name, item_name, exc))
            continue
        if item_name in seen:
            issues.append(LoadIssue(path.name, item_name, "id", "duplicate id, later item skipped"))
            continue
        seen.add(item_name)
        items.append(item)
    return items


def _issues(file: str, item: str, exc: ValidationError) -> list[LoadIssue]:
    return [LoadIssue(file, item, ".".join(str(p) for p in err["loc"]) or "-", err["msg"]) for err in exc.errors()]


def _case_chunk(case: Case, rules: Rules) -> Chunk:
    tier = rules.tier_for_fee(case.annual_fee)
    results = "；".join(_format_result(r.metric, r.before, r.after, r.unit) for r in case.results)
    text = "\n".join([
        case.summary,
        f"行业：{case.industry}；城市：{case.province}{case.city}；规模：{tier}（年费约{case.annual_fee / 10000:g}万元）",
        f"情境：{'、'.join(case.situation)}；使用产品：{'、'.join(case.products)}",
        f"挑战：{case.challenge}",
        f"做法：{'；'.join(case.actions)}",
        f"成果：{results}" + (f"；首次价值用时{case.time_to_first_value_days}天" if case.time_to_first_value_days else ""),
    ])
    meta = {
        "industry": case.industry, "city": case.city, "province": case.province,
        "region": rules.region_for_province(case.province) or "", "tier": tier,
        "audience": case.audience, "journey": case.journey, "annual_fee": case.annual_fee,
        "situation": "、".join(case.situation), "products": "、".join(case.products),
    }
    return Chunk(id=case.id, doc_key=PACK_DOC_PREFIX + "cases", position=0, kind="case", source=case.id,
                 title=f"{case.company}｜{case.industry}·{case.city}·{tier}", text=text, meta=meta,
                 views=[case.summary, f"{case.industry}：{case.challenge}"])


def _format_result(metric: str, before: float | None, after: float, unit: str) -> str:
    if before is None:
        return f"{metric}{after:g}{unit}"
    return f"{metric}从{before:g}{unit}到{after:g}{unit}"


def _faq_chunk(faq: Faq) -> Chunk:
    lines = [f"问：{faq.question}"]
    if faq.variants:
        lines.append(f"相似问法：{'；'.join(faq.variants)}")
    lines.append(f"答：{faq.answer}")
    meta = {"category": faq.category, "product": faq.product or "", "escalation": faq.escalation,
            "standardized": faq.standardized, "audience": faq.audience, "journey": faq.journey or "",
            "answer": faq.answer}
    # People ask in the words of the question, not of the answer: the standard question and each
    # similar question get a vector of their own, so the answer's words do not dilute them.
    return Chunk(id=faq.id, doc_key=PACK_DOC_PREFIX + "faqs", position=0, kind="faq", source=faq.id,
                 title=faq.question, text="\n".join(lines), meta=meta,
                 views=[faq.question, *faq.variants, faq.answer])


def _playbook_chunk(playbook: Playbook) -> Chunk:
    steps = "；".join(f"{i}. {s}" for i, s in enumerate(playbook.steps, 1))
    text = f"{playbook.summary}\n做法：{steps}\n{playbook.body}"
    meta = {"stage": playbook.stage, "journey": playbook.journey, "roles": ",".join(playbook.roles),
            "topic": playbook.topic, "audience": playbook.audience}
    return Chunk(id=playbook.id, doc_key=PACK_DOC_PREFIX + "playbooks", position=0, kind="playbook",
                 source=playbook.id, title=playbook.title, text=text, meta=meta,
                 views=[playbook.title, f"{playbook.title}：{playbook.summary}", *playbook.situations])
