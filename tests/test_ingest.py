"""Ingesting a company's own documents: five formats, structure-aware passages, incremental
updates, broken files, and the `copilot ingest` / `copilot search` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import build_settings
from copilot.cli import app
from copilot.errors import InvalidInput
from copilot.models import SearchFilters

DOCS = SearchFilters(kinds=["doc"])


# Document writers ---------------------------------------------------------------------------------
def write_txt(path: Path) -> Path:
    path.write_text("门店巡检清单\n冷柜温度每两小时记录一次，超过八度立即通知店长并转移商品。\n"
                    "收银台抽屉现金每天清点两次。\n", encoding="utf-8")
    return path


def write_md(path: Path) -> Path:
    filler = "新客户上线的第一周，客户成功经理要和客户一起确认目标、负责人和时间表，避免上线拖延。" * 6
    path.write_text(
        "# 客户成功运营手册\n\n"
        "## 第一章 上线\n\n"
        "### 1.1 启动会\n\n"
        f"{filler}\n\n"
        "会后当天把启动会纪要模板填好发给客户的项目负责人，纪要里写清双方的负责人和截止日期，"
        "并约好下一次周会的时间，让客户方看到推进节奏。所有待办事项都要落到具体的人和日期上。"
        "如果客户方没有指定负责人，先请客户的决策人指定一位，再开始排期。"
        "纪要发出后两天内没有回复的，客户成功经理要电话确认，确保双方对目标、分工和里程碑的理解一致，"
        "并把确认结果记在客户档案里。如有变更，当天更新纪要并重新发送给双方负责人，旧版本标注作废。\n\n"
        "## 第二章 续费\n\n"
        "合同到期前九十天发出续约意向书，附上服务期内的价值回顾报告，列出客户达成的关键指标和下一年的目标。"
        "续约意向书由客户成功经理起草，主管审核后发出，客户回复后进入商务谈判。\n",
        encoding="utf-8")
    return path


def write_html(path: Path) -> Path:
    path.write_text(
        "<html><head><title>退货政策</title><style>p {color: red}</style>"
        "<script>var 恶意脚本内容 = 1;</script></head><body>"
        "<nav>导航栏文字 首页 产品</nav>"
        "<h2>七天无理由退货</h2><p>生鲜商品不支持七天无理由退货，拆封的化妆品只换不退。</p>"
        "<ul><li>退货运费由顾客承担</li></ul>"
        "<footer>版权所有 页脚文字</footer></body></html>", encoding="utf-8")
    return path


def write_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("会员积分兑换规则", level=1)
    document.add_heading("预约方式", level=2)
    document.add_paragraph("积分兑换礼品需要提前三天在小程序预约，每人每月最多兑换两次。")
    document.save(str(path))
    return path


def write_pdf(path: Path) -> Path:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    pdf = canvas.Canvas(str(path))
    pdf.setFont("STSong-Light", 16)
    pdf.drawString(72, 770, "发票开具流程")
    pdf.setFont("STSong-Light", 11)
    pdf.drawString(72, 740, "电子发票在付款后二十四小时内发送到客户预留的邮箱。")
    pdf.drawString(72, 722, "纸质发票每月五号统一寄出，快递单号会以短信通知。")
    pdf.showPage()
    pdf.save()
    return path


FORMATS = {  # file -> (writer, question, a phrase of the expected passage, expected title)
    "巡检.txt": (write_txt, "冷柜温度多久记录一次？", "冷柜温度每两小时记录一次", "门店巡检清单"),
    "手册.md": (write_md, "续约意向书什么时候发？", "续约意向书", "客户成功运营手册"),
    "退货.html": (write_html, "生鲜商品可以七天无理由退货吗？", "生鲜商品不支持七天无理由退货", "退货政策"),
    "积分.docx": (write_docx, "积分兑换礼品要提前几天预约？", "提前三天在小程序预约", "会员积分兑换规则"),
    "发票.pdf": (write_pdf, "电子发票多久发到邮箱？", "二十四小时内发送到客户预留的邮箱", "发票开具流程"),
}


@pytest.fixture(scope="module")
def formats_index(tmp_path_factory, tiny_pack_dir):
    """One index holding one document of every supported format (embedded once per module)."""
    from copilot.service import Copilot

    root = tmp_path_factory.mktemp("formats")
    folder = root / "docs"
    folder.mkdir()
    for name, (writer, *_rest) in FORMATS.items():
        writer(folder / name)
    copilot = Copilot(build_settings(root, tiny_pack_dir))
    report = copilot.indexer.ingest([str(folder)])
    return copilot, folder, report


# Formats ------------------------------------------------------------------------------------------
def test_every_supported_format_is_ingested(formats_index):
    _, folder, report = formats_index
    assert report.failed == []
    assert sorted(report.added) == sorted(str(folder / name) for name in FORMATS)
    assert report.chunks >= len(FORMATS) and report.embedded >= report.chunks  # passages + sentence windows


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_format_is_searchable_with_its_title(formats_index, name):
    copilot, folder, _ = formats_index
    _, question, phrase, title = FORMATS[name]
    top = copilot.retriever.search(question, k=3, filters=DOCS).results[0]
    assert top.source == str(folder / name)
    assert top.kind == "doc"
    assert phrase in top.text
    assert top.title.startswith(title)


def test_html_boilerplate_and_scripts_are_not_indexed(formats_index):
    copilot, folder, _ = formats_index
    html_chunks = [c for c, _ in copilot.catalog.all_chunks() if c.source == str(folder / "退货.html")]
    text = "\n".join(c.text for c in html_chunks)
    assert "七天无理由" in text and "退货运费由顾客承担" in text
    for noise in ("恶意脚本内容", "导航栏文字", "页脚文字", "color: red"):
        assert noise not in text


def test_headings_travel_with_passages_deep_in_a_section(formats_index):
    """A passage that never mentions its section still says where it comes from."""
    copilot, folder, _ = formats_index
    chunks = [c for c, _ in copilot.catalog.all_chunks() if c.source == str(folder / "手册.md")]
    assert len(chunks) >= 3, [c.text[:30] for c in chunks]
    minutes = next(c for c in chunks if "启动会纪要模板" in c.text)
    assert "1.1 启动会" not in minutes.text
    assert minutes.context == "客户成功运营手册 > 第一章 上线 > 1.1 启动会"
    renewal = next(c for c in chunks if "续约意向书" in c.text)
    assert "第一章 上线" not in renewal.context and "1.1 启动会" not in renewal.context

    top = copilot.retriever.search("启动会纪要模板发给谁？", k=1, filters=DOCS).results[0]
    assert top.id == minutes.id
    assert "第一章 上线 > 1.1 启动会" in top.title


def test_docx_heading_levels_become_context(tmp_path, make_copilot):
    import docx

    document = docx.Document()
    document.add_heading("门店运营制度", level=1)
    document.add_heading("开店准备", level=2)
    document.add_paragraph("每天开门前三十分钟完成陈列检查，" * 20)
    document.add_paragraph("早班店员负责核对昨日的交班对账单并签字，" * 6)
    path = tmp_path / "制度.docx"
    document.save(str(path))
    copilot = make_copilot()
    copilot.indexer.ingest([str(path)])
    chunks = [c for c, _ in copilot.catalog.all_chunks() if c.kind == "doc"]
    later = next(c for c in chunks if c.text.startswith("早班店员"))
    assert later.title == "门店运营制度"
    assert later.context == "门店运营制度 > 开店准备"


# Incremental indexing -----------------------------------------------------------------------------
def _phrase_found(copilot, phrase: str, source: str | None = None) -> bool:
    found = copilot.retriever.search(phrase, k=5, filters=DOCS).results
    return any(phrase in e.text and (source is None or e.source == source) for e in found)


def test_reingest_is_incremental(tmp_path, make_copilot):
    folder = tmp_path / "docs"
    folder.mkdir()
    a = folder / "a.md"
    b = folder / "b.txt"
    a.write_text("# 报价规则\n\n年框客户的报价有效期为三十天，过期需要重新审批。\n", encoding="utf-8")
    b.write_text("门店排班\n周末排班要提前一周发布，临时调班需店长同意。\n", encoding="utf-8")
    copilot = make_copilot()

    first = copilot.indexer.ingest([str(folder)])
    assert sorted(first.added) == [str(a), str(b)] and first.embedded == first.chunks >= 2

    # Unchanged: nothing parsed, nothing embedded; also from a fresh process on the same data dir.
    again = copilot.indexer.ingest([str(folder)])
    assert (again.embedded, again.chunks, sorted(again.unchanged)) == (0, 0, [str(a), str(b)])
    restarted = make_copilot()
    assert restarted.indexer.ingest([str(folder)]).embedded == 0

    # Same text in a new file: found in the embedding cache, not embedded again.
    copy = folder / "a-copy.md"
    copy.write_text(a.read_text(encoding="utf-8"), encoding="utf-8")
    copied = copilot.indexer.ingest([str(folder)])
    assert copied.added == [str(copy)] and copied.embedded == 0 and copied.chunks >= 1


def test_changed_file_replaces_its_passages(tmp_path, make_copilot):
    folder = tmp_path / "docs"
    folder.mkdir()
    doc = folder / "报价.md"
    doc.write_text("# 报价规则\n\n年框客户的报价有效期为三十天，过期需要重新审批。\n", encoding="utf-8")
    copilot = make_copilot(exact_search_max_vectors=0)  # Chroma kept in step, as at scale
    copilot.indexer.ingest([str(folder)])
    assert _phrase_found(copilot, "报价有效期为三十天", str(doc))

    doc.write_text("# 报价规则\n\n年框客户的报价有效期调整为十五天，逾期作废并重新走审批流。\n", encoding="utf-8")
    report = copilot.indexer.ingest([str(folder)])
    assert report.updated == [str(doc)] and report.embedded >= 1

    assert _phrase_found(copilot, "报价有效期调整为十五天", str(doc))
    assert not _phrase_found(copilot, "报价有效期为三十天")
    assert copilot.store.count() == copilot.catalog.vector_count()  # no orphaned vectors


def test_removed_file_disappears_when_its_folder_is_reingested(tmp_path, make_copilot):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    keep = folder / "keep.txt"
    gone = folder / "sub" / "gone.txt"
    keep.write_text("发货规则\n仓库每天下午四点前的订单当天发货。\n", encoding="utf-8")
    gone.write_text("旧版促销规则\n满三百减五十的券不能和会员折扣叠加使用。\n", encoding="utf-8")
    copilot = make_copilot(exact_search_max_vectors=0)  # Chroma kept in step, as at scale
    copilot.indexer.ingest([str(folder)])
    assert _phrase_found(copilot, "满三百减五十的券", str(gone))
    vectors_before = copilot.store.count()

    gone.unlink()
    (folder / "prices.xlsx").write_bytes(b"not a document we read")
    report = copilot.indexer.ingest([str(folder)])
    assert report.removed == [str(gone)]  # reported as the user gave it, like added / unchanged
    assert report.unchanged == [str(keep)]
    assert report.skipped == [str(folder / "prices.xlsx")]
    found = copilot.retriever.search("满三百减五十的券能叠加会员折扣吗", k=10).results
    assert all(e.source != str(gone) for e in found)
    assert copilot.store.count() == copilot.catalog.vector_count() < vectors_before
    assert _phrase_found(copilot, "下午四点前的订单当天发货", str(keep))


def test_a_file_ingested_on_its_own_is_not_removed_by_another_folder(tmp_path, make_copilot):
    single = tmp_path / "single.txt"
    single.write_text("单独文件\n会员日每月十八号，全场积分翻倍。\n", encoding="utf-8")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "x.txt").write_text("别的文件\n门店早会九点开始。\n", encoding="utf-8")
    copilot = make_copilot()
    copilot.indexer.ingest([str(single)])
    report = copilot.indexer.ingest([str(folder)])
    assert report.removed == []
    assert _phrase_found(copilot, "全场积分翻倍", str(single))


# Broken input ---------------------------------------------------------------------------------------
def test_broken_files_are_reported_and_the_rest_is_ingested(tmp_path, make_copilot):
    folder = tmp_path / "docs"
    folder.mkdir()
    good = folder / "good.md"
    good.write_text("# 开票\n\n专票需要提供税号和开户行。\n", encoding="utf-8")
    (folder / "broken.pdf").write_bytes(b"this is not a pdf at all")
    (folder / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    (folder / "table.xlsx").write_bytes(b"unsupported, skipped in a folder walk")
    copilot = make_copilot()

    report = copilot.indexer.ingest([str(folder)])

    assert report.added == [str(good)]
    failed = dict(report.failed)
    assert set(failed) == {str(folder / "broken.pdf"), str(folder / "broken.docx")}
    assert all("cannot be parsed" in message and path in message for path, message in failed.items())
    assert _phrase_found(copilot, "专票需要提供税号", str(good))
    # Still reported the next time, not silently marked as done.
    assert len(copilot.indexer.ingest([str(folder)]).failed) == 2


def test_missing_path_is_a_clear_error(tmp_path, make_copilot):
    copilot = make_copilot()
    missing = tmp_path / "nope" / "手册.md"
    with pytest.raises(InvalidInput, match="No such file or folder") as excinfo:
        copilot.indexer.ingest([str(missing)])
    assert str(missing) in str(excinfo.value)


def test_unsupported_file_named_explicitly_is_a_clear_error(tmp_path, make_copilot):
    sheet = tmp_path / "报表.xlsx"
    sheet.write_bytes(b"x")
    with pytest.raises(InvalidInput, match="unsupported file type"):
        make_copilot().indexer.ingest([str(sheet)])


# The command line -----------------------------------------------------------------------------------
@pytest.fixture
def cli(tmp_path, tiny_pack_dir, monkeypatch):
    """Run `copilot ...` in-process from tmp_path, over the tiny pack and a data dir of its own."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    env = {"COPILOT_KNOWLEDGE_DIR": str(tiny_pack_dir), "COPILOT_DATA_DIR": str(tmp_path / "cli-data")}

    def invoke(*args: str):
        return runner.invoke(app, list(args), env=env)

    return invoke


def test_cli_ingest_then_search_json(tmp_path, cli):
    docs = tmp_path / "docs"
    docs.mkdir()
    write_txt(docs / "巡检.txt")

    ingested = cli("ingest", "docs", "--json")
    assert ingested.exit_code == 0, ingested.output
    report = json.loads(ingested.stdout)
    assert report["documents"]["added"] == ["docs/巡检.txt"] and report["documents"]["failed"] == []
    assert report["documents"]["chunks"] >= 1

    searched = cli("search", "冷柜温度多久记录一次", "--json", "--k", "3")
    assert searched.exit_code == 0, searched.output
    data = json.loads(searched.stdout)
    assert set(data) == {"query", "results"} and data["query"] == "冷柜温度多久记录一次"
    assert 1 <= len(data["results"]) <= 3
    for result in data["results"]:
        assert set(result) == {"id", "kind", "source", "title", "text", "score"}
        assert isinstance(result["score"], float)
    top = data["results"][0]
    assert top["source"] == "docs/巡检.txt"  # the path as given, not resolved
    assert top["kind"] == "doc" and "冷柜温度" in top["text"]

    faq_only = json.loads(cli("search", "打印机不出纸", "--json", "--kind", "faq").stdout)
    assert faq_only["results"] and {r["kind"] for r in faq_only["results"]} == {"faq"}
    assert faq_only["results"][0]["id"] == "faq-printer"

    unchanged = json.loads(cli("ingest", "docs", "--json").stdout)
    assert unchanged["documents"]["unchanged"] == ["docs/巡检.txt"] and unchanged["documents"]["embedded"] == 0


def test_cli_reports_broken_files_and_exits_nonzero(tmp_path, cli):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ok.md").write_text("# 标题\n\n正常的内容。\n", encoding="utf-8")
    (docs / "bad.pdf").write_bytes(b"garbage")
    result = cli("ingest", "docs")
    assert result.exit_code == 1
    assert "docs/bad.pdf" in result.stderr and "1 added" in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (("ingest", "missing-folder"), "No such file or folder: missing-folder"),
    (("ingest", "notes.pptx"), "unsupported file type"),
    (("ingest", "notes.xlsx"), "not a readable .xlsx"),
    (("search", "续费", "--tier", "巨型"), "巨型"),
    (("search", "续费", "--kind", "video"), "video"),
    (("search", "续费", "--k", "0"), "--k"),
])
def test_cli_bad_input_exits_nonzero_with_a_message(tmp_path, cli, args, message):
    (tmp_path / "notes.xlsx").write_bytes(b"x")
    (tmp_path / "notes.pptx").write_bytes(b"x")
    result = cli(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_installed_copilot_command_prints_search_json(tmp_path, tiny_pack_dir):
    """The real entry point, in its own process, as a script or another tool would call it."""
    exe = Path(sys.executable).parent / "copilot"
    if not exe.exists():
        pytest.fail(f"{exe} missing: is the package installed (pip install -e .)?")
    docs = tmp_path / "docs"
    docs.mkdir()
    write_txt(docs / "巡检.txt")
    env = {**os.environ, "COPILOT_KNOWLEDGE_DIR": str(tiny_pack_dir)}
    data_dir = str(tmp_path / "data")
    ingest = subprocess.run([str(exe), "ingest", "docs", "--data-dir", data_dir], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert ingest.returncode == 0, ingest.stderr
    search = subprocess.run([str(exe), "search", "冷柜温度", "--json", "--data-dir", data_dir], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    assert search.returncode == 0, search.stderr
    assert json.loads(search.stdout)["results"][0]["source"] == "docs/巡检.txt"
    # The command waited for its index snapshot to be written: the next command loads it.
    assert len(list((tmp_path / "data" / "cache").glob("snapshot-*.pickle"))) == 1
    missing = subprocess.run([str(exe), "search", "x", "--tier", "巨型", "--data-dir", data_dir], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "巨型" in missing.stderr
