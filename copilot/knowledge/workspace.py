"""`copilot init DIR`: a company's own knowledge folder, ready to fill.

The rules (size tiers, matching weights, decline model), the place and industry words, the
glossary, the intent examples and the plan building blocks are the product's defaults and are
copied as they are; the company edits them when its business differs. The vendor file and the
item files start empty, with a comment saying what goes in; spreadsheet templates sit next to
them for teams that keep their FAQs and cases in Excel. `--sample` copies the demo pack instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from copilot.errors import InvalidInput
from copilot.knowledge.sheets import KINDS, write_template

DEFAULTS = ("rules.yaml", "gazetteer.yaml", "glossary.yaml", "intents.yaml", "plan_templates.yaml")
ITEM_FILES = {
    "faqs.yaml": ("faqs", "FAQ：标准问 question、相似问 variants、答案 answer、分类 category、受众 audience（public/internal）。"
                          "也可以用表格导入：copilot ingest templates/faq.xlsx"),
    "cases.yaml": ("cases", "同行案例：客户 company、行业 industry、城市 city、年费 annual_fee（元）、产品 products、挑战 challenge、"
                            "做法 actions、成果 results。也可以用表格导入：copilot ingest templates/case.xlsx"),
    "playbooks.yaml": ("playbooks", "打法：标题 title、阶段 stage、旅程 journey、角色 roles、主题 topic、摘要 summary、"
                                    "适用情境 situations、步骤 steps、正文 body。也可以用表格导入：copilot ingest templates/playbook.xlsx"),
}
VENDOR = """# 贵公司与产品：方案、计划和一页纸只推荐这里列出的产品。
# Your company and its products: plans and one-pagers only recommend products listed here.
vendor: ""          # 公司或品牌名，例如 云铺
vendor_en: ""
products: []
#  - name: 产品名（与案例表「产品」列里的写法一致）
#    en: English name
#    what: 一句话说明它做什么
"""


def init_workspace(target: Path, pack_dir: Path, sample: bool = False) -> list[Path]:
    """Create the folder; refuses to write into a folder that already holds knowledge files."""
    if target.exists() and any(target.glob("*.yaml")):
        raise InvalidInput(f"{target} already holds knowledge files; choose an empty or new folder")
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    shipped = pack_dir / "embeddings"
    if shipped.is_dir():  # vectors of the demo pack and of the intent examples: nothing to embed for those
        shutil.copytree(shipped, target / "embeddings", dirs_exist_ok=True)
    if sample:
        for source in sorted(pack_dir.glob("*.yaml")):
            written.append(Path(shutil.copy2(source, target / source.name)))
    else:
        for name in DEFAULTS:
            written.append(Path(shutil.copy2(pack_dir / name, target / name)))
        (target / "vendor.yaml").write_text(VENDOR, encoding="utf-8")
        written.append(target / "vendor.yaml")
        for name, (key, what) in ITEM_FILES.items():
            (target / name).write_text(f"# {what}\n{key}: []\n", encoding="utf-8")
            written.append(target / name)
    templates = target / "templates"
    templates.mkdir(exist_ok=True)
    for kind in KINDS:
        write_template(kind, templates / f"{kind}.xlsx")
        written.append(templates / f"{kind}.xlsx")
    return written
