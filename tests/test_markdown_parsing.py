"""Markdown documents become plain-text blocks: markup gone, numbers and headings intact."""

from __future__ import annotations

from collections import Counter

import pytest

from conftest import SEEDS_DIR
from copilot.knowledge.parsers import Block, parse_file


def parse(tmp_path, markdown: str) -> list[Block]:
    path = tmp_path / "doc.md"
    path.write_text(markdown, encoding="utf-8")
    return parse_file(path).blocks


def body(tmp_path, markdown: str) -> list[str]:
    return [b.text for b in parse(tmp_path, markdown) if b.heading_level == 0]


def test_a_negative_number_keeps_its_sign_and_a_bullet_loses_its_marker(tmp_path):
    assert body(tmp_path, "-5% 的同比变化\n\n- 5%\n") == ["-5% 的同比变化", "5%"]


def test_each_list_item_is_one_block_without_its_marker(tmp_path):
    markdown = "- 第一项\n* 第二项\n+ 第三项\n\n1. 启动会\n2) 周会\n\n- 松散的一项\n\n  它的第二段\n"
    assert body(tmp_path, markdown) == ["第一项", "第二项", "第三项", "启动会", "周会", "松散的一项 它的第二段"]


def test_nested_lists_keep_document_order(tmp_path):
    markdown = "- 上线\n  - 启动会\n    - 纪要\n  - 周会\n- 续费\n"
    assert body(tmp_path, markdown) == ["上线", "启动会", "纪要", "周会", "续费"]


@pytest.mark.parametrize(("markdown", "expected"), [
    ("**重点**客户", "重点客户"),
    ("的**“重点”**客户与**（注意）**事项", '的"重点"客户与(注意)事项'),  # CJK punctuation inside the bold
    ("__重点__，*强调*和 _斜体_", "重点,强调和 斜体"),
    ("7*24小时服务，2*3*4", "7*24小时服务,2*3*4"),  # times signs, not emphasis
    ("运行 `copilot ingest` 命令", "运行 copilot ingest 命令"),
    ("见[续费手册](https://example.com/a.md)", "见续费手册"),
    ("图示![流程图](flow.png)如下", "图示如下"),
    ("<span>内联</span>标签 &amp; 实体", "内联标签 & 实体"),
    ("~~旧价格~~新价格", "旧价格新价格"),
    ("`__init__` 与 `a**b**` 原样", "__init__ 与 a**b** 原样"),
])
def test_inline_markup_becomes_plain_text(tmp_path, markdown, expected):
    assert body(tmp_path, markdown + "\n") == [expected]


def test_headings_keep_their_level(tmp_path):
    markdown = "".join(f"{'#' * level} 第{level}级\n\n" for level in range(1, 7)) + "标题\n---\n\n####### 不是标题\n"
    blocks = parse(tmp_path, markdown)
    assert [(b.text, b.heading_level) for b in blocks] == [
        *((f"第{level}级", level) for level in range(1, 7)), ("标题", 2), ("####### 不是标题", 0)]


def test_table_rows_are_blocks_with_cells_joined(tmp_path):
    markdown = "| 指标 | 目标 |\n|---|---:|\n| **续费率** | 90% |\n| 复购率 | -5% |\n"
    assert body(tmp_path, markdown) == ["指标 | 目标", "续费率 | 90%", "复购率 | -5%"]


def test_fenced_code_is_kept_as_one_block(tmp_path):
    markdown = "说明\n\n```bash\ncopilot ingest docs/\ncopilot search \"续费\"\n```\n"
    assert body(tmp_path, markdown) == ["说明", "copilot ingest docs/\ncopilot search \"续费\""]


def test_blockquotes_html_and_indented_paragraphs_are_body_text(tmp_path):
    markdown = ("> 客户的成功\n> 才是客户成功\n\n    缩进的段落也是正文\n\n<!-- 注释 -->\n\n"
                "<div align=\"center\">\n<img src=\"a.png\">\n居中的文字\n</div>\n")
    assert body(tmp_path, markdown) == ["客户的成功 才是客户成功", "缩进的段落也是正文", "居中的文字"]


def test_front_matter_is_skipped_but_a_rule_is_not_front_matter(tmp_path):
    parsed = parse(tmp_path, "---\ntitle: 隐藏\ntags: [a]\n---\n# 手册\n\n正文\n\n---\n\n结尾\n")
    assert [b.text for b in parsed] == ["手册", "正文", "结尾"]


def test_chinese_document_title_and_traditional_script(tmp_path):
    path = tmp_path / "手冊.md"
    path.write_text("# 客戶成功運營手冊\n\n續約意向書在**到期前九十天**發出。\n", encoding="utf-8")
    parsed = parse_file(path)
    assert parsed.title == "客户成功运营手册"
    assert parsed.blocks[1] == Block("续约意向书在到期前九十天发出。", 0)


@pytest.mark.skipif(SEEDS_DIR is None, reason="seed documents (../shared/seeds) not available")
def test_a_seed_read_as_markdown_splits_its_list_and_loses_only_item_numbers(tmp_path):
    raw = (SEEDS_DIR / "001_b025ddc8bba95a9c.txt").read_text(encoding="utf-8")
    (tmp_path / "seed.txt").write_text(raw, encoding="utf-8")
    texts = [b.text for b in parse(tmp_path, raw)]
    assert "什么是我们公司客户成功的标准?" in texts and "KPI如何达成?" in texts

    def characters(lines: list[str]) -> Counter:
        return Counter(c for line in lines for c in line if c.isalnum())

    as_text = characters([b.text for b in parse_file(tmp_path / "seed.txt").blocks])
    lost = as_text - characters(texts)
    assert set(lost) <= set("0123456789") and lost.total() <= 3  # the "1." "2." "3." of an ordered list
