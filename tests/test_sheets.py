"""Spreadsheets in and out: Excel and CSV sheets of FAQs, cases and playbooks become validated items."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pytest
import yaml
from conftest import PACK_DIR

from copilot.errors import InvalidInput
from copilot.knowledge.schema import Case, Faq, Playbook, Result
from copilot.knowledge.sheets import (
    COLUMNS,
    derive_id,
    detect_kind,
    load_sheet,
    parse_result,
    read_table,
    rows_to_items,
    split_values,
    write_table,
    write_template,
)

FAQ_HEADERS = ["标准问", "相似问法", "答案", "分类", "需升级", "受众"]


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8", delimiter: str = ",") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)
    return path


def write_xlsx(path: Path, *sheets: list[list]) -> Path:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for number, rows in enumerate(sheets, start=1):
        sheet = workbook.create_sheet(f"Sheet{number}")
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


def load(path: Path):
    return load_sheet(path)


def pack_items(key: str, model):
    raw = yaml.safe_load((PACK_DIR / f"{key}.yaml").read_text(encoding="utf-8"))[key]
    return [model(**item) for item in raw]


# Recognising a sheet ---------------------------------------------------------------------------
@pytest.mark.parametrize(("headers", "kind"), [
    (["标准问", "相似问题", "答案", "分类"], "faq"),
    (["问题", "回答"], "faq"),
    (["Question", "Similar Questions", "ANSWER", "Category", "Audience"], "faq"),
    (["客户名称", "行业", "城市", "年费（万元）", "使用产品", "背景", "举措", "成果"], "case"),
    (["Company", "Industry", "City", "Annual fee (yuan)", "Products", "Challenge", "Actions", "Results",
      "Time to first value"], "case"),
    (["标题", "阶段", "角色", "摘要", "步骤", "正文"], "playbook"),
    (["title", "summary", "steps", "roles"], "playbook"),
])
def test_kind_is_recognised_from_chinese_or_english_headers(headers, kind):
    assert detect_kind(headers) == kind


@pytest.mark.parametrize("headers", [["姓名", "电话", "地址"], ["标准问", "分类"], ["标题", "正文"], []])
def test_a_sheet_without_the_required_columns_is_not_recognised(headers):
    assert detect_kind(headers) is None


def test_loading_an_unrecognised_sheet_names_the_expected_columns(tmp_path):
    path = write_csv(tmp_path / "contacts.csv", [["姓名", "电话"], ["张三", "138"]])
    with pytest.raises(InvalidInput, match="contacts.csv: not a recognised sheet") as exc:
        load(path)
    assert "标准问" in str(exc.value) and "答案" in str(exc.value)


def test_header_punctuation_spacing_and_units_do_not_matter(tmp_path):
    path = write_csv(tmp_path / "faq.csv", [[" 标准问* ", "答 案", "Similar-Questions"],
                                            ["怎么退款？", "在订单里点退款。", "退款怎么弄"]])
    sheet = load(path)
    assert sheet.items[0].question == "怎么退款？" and sheet.items[0].variants == ["退款怎么弄"]


# Cells -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("cell", "values"), [
    ("扫码失败；付不了；报错", ["扫码失败", "付不了", "报错"]),
    ("扫码失败|付不了｜报错", ["扫码失败", "付不了", "报错"]),
    ("扫码失败\n付不了\n", ["扫码失败", "付不了"]),
    ("a;b", ["a", "b"]),
    # Commas belong to the sentence, never split.
    ("顾客付款码扫不出来，怎么办", ["顾客付款码扫不出来，怎么办"]),
    # With | present, a semicolon is a clause break inside one value.
    ("判断 PMF 是否扎实；如果是，暂停扩张 | 复盘", ["判断 PMF 是否扎实；如果是，暂停扩张", "复盘"]),
])
def test_multi_value_cells_split_on_bars_semicolons_and_new_lines(cell, values):
    assert split_values(cell) == values


@pytest.mark.parametrize(("entry", "result"), [
    ("复购率 18%→31%", Result(metric="复购率", before=18, after=31, unit="%")),
    ("复购率从18%到31%", Result(metric="复购率", before=18, after=31, unit="%")),
    ("客单价 45元 -> 52元", Result(metric="客单价", before=45, after=52, unit="元")),
    ("会员数 12000", Result(metric="会员数", after=12000)),
    ("月利润 -3.5万元→1.2万元", Result(metric="月利润", before=-3.5, after=1.2, unit="万元")),
    ("库存周转 12天→-2天", Result(metric="库存周转", before=12, after=-2, unit="天")),
    ("毛利率 －２％→５％", Result(metric="毛利率", before=-2, after=5, unit="%")),
    ("45天会员流失率 12%→5%", Result(metric="45天会员流失率", before=12, after=5, unit="%")),
    ("储值会员数 0→260人", Result(metric="储值会员数", before=0, after=260, unit="人")),
    ("年销售额 1.2亿元", Result(metric="年销售额", after=1.2, unit="亿元")),
    # Two units of one quantity: both sides in the smaller one, so the change compares like numbers.
    ("对账时间 2小时→15分钟", Result(metric="对账时间", before=120, after=15, unit="分钟")),
    ("月利润 0.3万元→8000元", Result(metric="月利润", before=3000, after=8000, unit="元")),
    ("交付周期 3周→10天", Result(metric="交付周期", before=21, after=10, unit="天")),
    # 从每天… says per what: kept with the metric, not lost and not taken for a unit.
    ("对账时间从每天2小时降到15分钟", Result(metric="对账时间（每天）", before=120, after=15, unit="分钟")),
    ("客诉从每周12起降到3起", Result(metric="客诉（每周）", before=12, after=3, unit="起")),
])
def test_result_entries_are_read_with_sign_and_unit(entry, result):
    assert parse_result(entry) == result


def test_a_result_whose_two_sides_measure_different_things_is_refused_by_name(tmp_path):
    headers = ["客户名称", "行业", "城市", "年费", "使用产品", "挑战", "做法", "成果"]
    rows = [["甲", "药店", "株洲", "8万", "云铺收银", "挑战", "做法", "客单价 45元→52人"],
            ["乙", "药店", "株洲", "8万", "云铺收银", "挑战", "做法", "对账时间 2小时→15分钟"]]
    sheet = load(write_csv(tmp_path / "cases.csv", [headers, *rows]))
    assert [str(e) for e in sheet.errors] == [
        "cases.csv:2:成果: result '客单价 45元→52人' has two different units: 元 and 人"]
    assert [c.results[0].before for c in sheet.items] == [120]  # the other row loads


def test_case_sheet_reads_fees_in_yuan_and_wan_and_several_results(tmp_path):
    headers = ["客户名称", "行业", "城市", "年费", "使用产品", "挑战", "做法", "成果"]
    rows = [[f"客户{n}", "烘焙", "杭州", fee, "云铺收银|云铺会员", "会员不通", "统一会员；生日券",
             "复购率 18%→31%；月利润 -2万元→3万元"] for n, fee in enumerate(["18万", "180,000", "1.8万元", "¥26000"])]
    sheet = load(write_csv(tmp_path / "cases.csv", [headers, *rows]))
    assert sheet.errors == []
    assert [c.annual_fee for c in sheet.items] == [180000, 180000, 18000, 26000]
    case = sheet.items[0]
    assert case.products == ["云铺收银", "云铺会员"] and case.actions == ["统一会员", "生日券"]
    assert case.results[1] == Result(metric="月利润", before=-2, after=3, unit="万元")


def test_a_wan_header_scales_plain_numbers_but_not_cells_that_say_wan(tmp_path):
    headers = ["客户名称", "行业", "城市", "年费(万元)", "使用产品", "挑战", "做法", "成果"]
    rows = [[name, "烘焙", "杭州", fee, "云铺收银", "挑战", "做法", "会员数 100"]
            for name, fee in zip("甲乙丙", ("18", "2.5万", "0.4"), strict=True)]
    assert [c.annual_fee for c in load(write_csv(tmp_path / "c.csv", [headers, *rows])).items] == [
        180000, 25000, 4000]


def test_sheet_values_in_chinese_map_to_model_values(tmp_path):
    path = write_csv(tmp_path / "faq.csv", [
        FAQ_HEADERS + ["标准化", "阶段"],
        ["续费有折扣吗？", "", "内部审批后可给。", "账单", "是", "内部", "否", "续费扩展"],
        ["怎么开发票？", "", "后台申请。", "", "N", "Public", "yes", ""],
    ])
    first, second = load(path).items
    assert (first.escalation, first.audience, first.standardized, first.journey) == (
        True, "internal", False, "续费扩展")
    # A missing category gets 未分类; empty cells fall back to the model's defaults.
    assert (second.category, second.escalation, second.audience, second.journey) == ("未分类", False, "public", None)


def test_playbook_roles_accept_chinese_names_and_missing_columns_get_defaults(tmp_path):
    path = write_csv(tmp_path / "pb.csv", [["标题", "摘要", "步骤", "角色", "阶段"],
                                           ["续费归 CSM", "续费由客户成功负责", "指定 CSM\n提前一季度评估", "客户成功、销售", "gtm"]])
    playbook = load(path).items[0]
    assert playbook.roles == ["csm", "sales"] and playbook.stage == "GTM"
    assert (playbook.journey, playbook.audience, playbook.topic) == ("价值兑现", "internal", "未分类")
    assert playbook.id.startswith("pb-")


def test_case_without_province_or_summary_is_filled_for_the_caller(tmp_path):
    path = write_csv(tmp_path / "cases.csv", [
        ["客户名称", "行业", "城市", "年费", "产品", "背景", "做法", "结果"],
        ["麦田里烘焙", "烘焙", "杭州", "180000", "云铺会员", "会员不通", "统一会员", "会员复购率 18%→31%"],
    ])
    case = load(path).items[0]
    assert case.province == ""
    # The summary is how a peer case is shown: who, the challenge, and the headline result.
    assert case.summary == "麦田里烘焙（烘焙）：会员不通；会员复购率 18%→31%"
    assert case.time_to_first_value_days is None  # not in the sheet, so not made up
    assert case.audience == "public" and "（示例）" not in case.company


# Bad rows ----------------------------------------------------------------------------------------
def test_bad_rows_are_reported_with_file_row_and_column_and_the_rest_load(tmp_path):
    path = write_csv(tmp_path / "faqs.csv", [
        FAQ_HEADERS,
        ["怎么退款？", "退款怎么弄", "在订单里点退款。", "收银", "否", "公开"],
        ["怎么开发票？", "", "", "账单", "否", "公开"],
        ["", "", "", "", "", ""],
        ["扫码失败怎么办？", "", "刷新付款码再扫。", "收银", "也许", "公开"],
        ["续费折扣？", "", "走审批。", "账单", "否", "保密"],
        ["怎么改价？", "", "在商品里改。", "商城", "否", "内部"],
    ])
    sheet = load(path)
    assert [f.question for f in sheet.items] == ["怎么退款？", "怎么改价？"]
    messages = [str(e) for e in sheet.errors]
    assert messages[0] == "faqs.csv:3:答案: required value is empty"
    assert messages[1].startswith("faqs.csv:5:需升级: expected 是/否")
    assert messages[2].startswith("faqs.csv:6:受众: expected 公开/public or 内部/internal")
    assert len(messages) == 3  # the blank row 4 is skipped silently


def test_model_validation_errors_name_the_sheet_column(tmp_path):
    path = write_csv(tmp_path / "cases.csv", [
        ["客户名称", "行业", "城市", "年费", "产品", "背景", "做法", "成果", "旅程", "首次价值天数"],
        ["甲", "烘焙", "杭州", "面议", "云铺会员", "挑战", "做法", "会员数 100", "价值兑现", "21"],
        ["乙", "烘焙", "杭州", "-5000", "云铺会员", "挑战", "做法", "会员数 100", "价值兑现", "21"],
        ["丙", "烘焙", "杭州", "5000", "云铺会员", "挑战", "做法", "会员数 100", "售后", "21"],
        ["丁", "烘焙", "杭州", "5000", "云铺会员", "挑战", "做法", "复购率 提升明显", "价值兑现", "2.5"],
        ["戊", "烘焙", "杭州", "5000", "云铺会员", "挑战", "做法", "会员数 100", "价值兑现", "21"],
    ])
    sheet = load(path)
    assert [c.company for c in sheet.items] == ["戊"]
    located = [(e.row, e.column) for e in sheet.errors]
    assert located == [(2, "年费"), (3, "年费"), (4, "旅程"), (5, "成果"), (5, "首次价值天数")]
    assert "greater than or equal to 0" in sheet.errors[1].message
    assert "价值兑现" in sheet.errors[2].message  # the valid journeys are listed


def test_unknown_columns_are_reported_not_fatal(tmp_path):
    path = write_csv(tmp_path / "faq.csv", [["标准问", "答案", "备注", "负责人"], ["怎么退款？", "点退款。", "老问题", "王"]])
    sheet = load(path)
    assert sheet.unknown_columns == ["备注", "负责人"] and len(sheet.items) == 1


def test_forcing_a_kind_whose_columns_are_missing_is_refused(tmp_path):
    table = read_table(write_csv(tmp_path / "faq.csv", [["标准问", "答案"], ["问", "答"]]))
    with pytest.raises(InvalidInput, match="missing columns for a case sheet: 客户名称"):
        rows_to_items(table, "case", "faq.csv")


# Reading files -----------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
@pytest.mark.parametrize("delimiter", [",", "\t", ";"])
def test_csv_in_any_common_encoding_and_delimiter_reads_the_same(tmp_path, encoding, delimiter):
    rows = [FAQ_HEADERS, ["收银台扫码支付失败怎么办？", "扫码枪报错|付不了", "先刷新付款码，再扫一次；仍失败请联系客服。", "收银", "是", "公开"]]
    faq = load(write_csv(tmp_path / "faq.csv", rows, encoding, delimiter)).items[0]
    assert faq.question == "收银台扫码支付失败怎么办？"
    assert faq.answer == "先刷新付款码，再扫一次；仍失败请联系客服。"
    assert faq.variants == ["扫码枪报错", "付不了"] and faq.escalation is True


def test_xlsx_uses_the_first_non_empty_sheet_and_spreadsheet_row_numbers(tmp_path):
    path = write_xlsx(tmp_path / "cases.xlsx", [], [
        [],
        ["客户名称", "行业", "城市", "年费", "门店数", "产品", "挑战", "做法", "成果", "首次价值天数"],
        ["麦田里烘焙", "烘焙", "杭州", 180000, 32, "云铺会员", "会员不通", "统一会员", "复购率 18%→31%", 21],
        [None] * 10,
        ["小满面包", "烘焙", "杭州", 48000.0, "六家", "云铺会员", "漏单", "预售", "错漏单 40单→3单", 14],
    ])
    table = read_table(path)
    assert table.header_row == 2 and [r.number for r in table.rows] == [3, 5]
    sheet = load(path)
    assert [(c.annual_fee, c.stores, c.time_to_first_value_days) for c in sheet.items] == [(180000, 32, 21)]
    assert [str(e) for e in sheet.errors] == ["cases.xlsx:5:门店数: expected a number such as 180000 or 18万, got '六家'"]


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("broken.xlsx", b"PK\x03\x04 this is not really a workbook", "not a readable .xlsx"),
    ("workbook.csv", None, "binary file"),
    ("garbled.csv", b"\x80\x80\xff question,answer", "neither UTF-8 nor GB18030"),
    ("empty.csv", b"", "empty"),
    ("blank.csv", b"\xef\xbb\xbf\r\n,,\r\n", "no header row"),
    ("old.xls", b"\xd0\xcf\x11\xe0", ".xls"),
    ("notes.txt", b"question,answer", "expected an .xlsx or .csv"),
])
def test_unreadable_files_are_refused_with_the_file_named(tmp_path, name, content, reason):
    path = tmp_path / name
    if content is None:  # a real workbook renamed to .csv
        write_xlsx(tmp_path / "real.xlsx", [["标准问", "答案"]]).rename(path)
    else:
        path.write_bytes(content)
    with pytest.raises(InvalidInput, match=reason) as exc:
        read_table(path)
    assert name in str(exc.value)


def test_an_empty_xlsx_workbook_has_no_header(tmp_path):
    with pytest.raises(InvalidInput, match="empty.xlsx: has no header row"):
        read_table(write_xlsx(tmp_path / "empty.xlsx", [], []))


# Writing and the round trip ------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "key", "model"), [("faq", "faqs", Faq), ("case", "cases", Case),
                                                    ("playbook", "playbooks", Playbook)])
@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_written_sheets_read_back_as_the_same_items(tmp_path, kind, key, model, suffix):
    items = pack_items(key, model)
    path = tmp_path / f"{key}{suffix}"
    write_table(kind, items, path)
    sheet = load(path)
    assert sheet.errors == [] and sheet.unknown_columns == []
    assert sheet.items == items


def test_exported_csv_has_a_bom_and_chinese_headers_for_excel(tmp_path):
    path = tmp_path / "faqs.csv"
    write_table("faq", pack_items("faqs", Faq)[:1], path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    header = raw.decode("utf-8-sig").splitlines()[0].split(",")
    assert header[:4] == ["编号", "标准问", "相似问", "答案"]


def test_an_answer_that_starts_with_equals_is_kept_as_text_in_xlsx(tmp_path):
    faq = Faq(id="faq-x", question="公式怎么写？", answer="=SUM(A1:A3) 即可", category="数据报表")
    path = tmp_path / "faq.xlsx"
    write_table("faq", [faq], path)
    assert load(path).items == [faq]


def test_a_single_step_with_a_semicolon_survives_the_round_trip(tmp_path):
    playbook = Playbook(id="pb-x", title="判断 PMF", stage="PMF", journey="上线", roles=["csm"], topic="PMF",
                        summary="先判断", steps=["判断 PMF 是否扎实；如果是，先打磨产品"], body="")
    path = tmp_path / "pb.csv"
    write_table("playbook", [playbook], path)
    assert load(path).items == [playbook]


@pytest.mark.parametrize("kind", ["faq", "case", "playbook"])
@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_a_template_is_a_recognised_empty_sheet(tmp_path, kind, suffix):
    path = tmp_path / f"template{suffix}"
    write_template(kind, path)
    table = read_table(path)
    assert list(table.headers) == [c.header for c in COLUMNS[kind]] and table.rows == ()
    assert detect_kind(table.headers) == kind and load(path).items == []


# Ids ---------------------------------------------------------------------------------------------
def test_ids_without_an_id_column_are_stable_and_follow_the_question(tmp_path):
    rows = [["标准问", "答案"], ["怎么退款？", "在订单里点退款。"], ["怎么开发票？", "后台申请。"]]
    first = load(write_csv(tmp_path / "a.csv", rows)).items
    again = load(write_csv(tmp_path / "b.csv", rows)).items
    edited = load(write_csv(tmp_path / "c.csv", [rows[0], ["怎么退款？", "改了答案：联系店长。"],
                                                  ["怎么开具发票？", "后台申请。"]])).items
    assert [f.id for f in first] == [f.id for f in again]
    assert first[0].id.startswith("faq-") and len(first[0].id) == len("faq-") + 10
    assert edited[0].id == first[0].id and edited[0].answer == "改了答案：联系店长。"
    assert edited[1].id != first[1].id
    assert first[0].id == derive_id("faq", " 怎么退款? ")  # spacing and full-width punctuation ignored


def test_an_id_column_wins_and_a_duplicate_id_is_an_error(tmp_path):
    path = write_csv(tmp_path / "faqs.csv", [["编号", "标准问", "答案"], ["faq-pos-001", "怎么退款？", "点退款。"],
                                             ["faq-pos-001", "怎么开发票？", "后台申请。"],
                                             ["", "怎么改价？", "在商品里改。"], ["", "怎么改价？", "重复了。"]])
    sheet = load(path)
    assert [f.id for f in sheet.items] == ["faq-pos-001", derive_id("faq", "怎么改价？")]
    assert [str(e).split(": ")[0] for e in sheet.errors] == ["faqs.csv:3:编号", "faqs.csv:5:编号"]
    assert "duplicate id 'faq-pos-001' (first on row 2)" in sheet.errors[0].message
