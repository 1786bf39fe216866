"""The pack's settings files are typed: a typo or a wrong type is a load issue with file, key path
and message, the broken key falls back to its default, and the rest of the pack still loads."""

from __future__ import annotations

import shutil

from conftest import PACK_DIR, write_tiny_pack
from copilot.knowledge.pack import load_pack

SETTINGS_FILES = ("plan_templates.yaml", "glossary.yaml", "intents.yaml")  # those the tiny pack leaves out


def full_tiny_pack(tmp_path, file: str | None = None, old: str = "", new: str = ""):
    """The tiny pack with every shipped settings file, `old` replaced by `new` in `file`."""
    folder = write_tiny_pack(tmp_path / "knowledge")
    for name in SETTINGS_FILES:
        shutil.copy(PACK_DIR / name, folder / name)
    if file:
        text = (folder / file).read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} is not unique in {file}"
        (folder / file).write_text(text.replace(old, new), encoding="utf-8")
    return load_pack(folder)


def issues_of(pack) -> list[tuple[str, str, str]]:
    return [(i.file, i.field, i.message) for i in pack.issues]


# Clean packs -------------------------------------------------------------------------------------
def test_the_shipped_pack_has_no_issues():
    assert [str(i) for i in load_pack(PACK_DIR).issues] == []


def test_the_tiny_pack_only_misses_the_files_it_leaves_out(tmp_path):
    pack = load_pack(write_tiny_pack(tmp_path / "knowledge"))
    assert sorted(str(i) for i in pack.issues) == sorted(f"{name}: file is missing" for name in SETTINGS_FILES)
    assert full_tiny_pack(tmp_path / "full").issues == []


# One typo, one wrong type per file ---------------------------------------------------------------
def test_a_misspelled_plan_template_key_is_reported_and_only_it_is_lost(tmp_path):
    pack = full_tiny_pack(tmp_path, "plan_templates.yaml", "    review_every_days: 30\n    qbr: 每半年业务回顾",
                          "    reveiw_every_days: 30\n    qbr: 每半年业务回顾")
    assert [str(i) for i in pack.issues] == [
        "plan_templates.yaml: key 'tiers.中型.reveiw_every_days': Extra inputs are not permitted"]
    tiers = pack.plan_templates.tiers
    assert tiers["中型"].review_every_days is None and tiers["中型"].qbr_every_days == 180
    assert tiers["大型"].review_every_days == 30 and len(pack.plan_templates.outcomes) == 8
    assert len(pack.cases) == 4 and pack.rules.tier_for_fee(200_000) == "中型"


def test_a_quick_win_with_a_wrong_type_is_left_out(tmp_path):
    pack = full_tiny_pack(tmp_path, "plan_templates.yaml", "products: [云铺会员], impact: 4, resources: 1, probability: 5, "
                          "owner_side: 客户方", "products: [云铺会员], impact: high, resources: 1, probability: 5, "
                          "owner_side: 客户方")
    assert issues_of(pack) == [("plan_templates.yaml", "quick_wins.0.impact",
                                "Input should be a valid integer, unable to parse string as an integer")]
    titles = [q.title for q in pack.plan_templates.quick_wins]
    assert "沉睡会员唤醒券" not in titles and len(titles) == 18


def test_rules_typo_and_wrong_type_keep_the_other_rules(tmp_path):
    pack = full_tiny_pack(tmp_path, "rules.yaml", "    大型: 30\n    中型: 60\n  ticket_queue:",
                          "    大型: half an hour\n    中型: 60\n  ticket_que:")
    assert {(f, field) for f, field, _ in issues_of(pack)} == {("rules.yaml", "andon.sla_minutes.大型"),
                                                              ("rules.yaml", "andon.ticket_que")}
    andon = pack.rules.andon
    assert andon.sla_minutes == {"中型": 60} and andon.ticket_queue == "" and "宕机" in andon.urgent_words
    assert pack.rules.role_route("support").audiences == ["public"] and pack.rules.ownership.new_sale_window.months == 6


def test_a_broken_size_tier_is_left_out_and_reported_once(tmp_path):
    pack = full_tiny_pack(tmp_path, "rules.yaml", "min_fee: 1000000", "min_fee: lots")
    assert [(f, field) for f, field, _ in issues_of(pack)] == [("rules.yaml", "size_tiers.0.min_fee")]
    assert pack.rules.tier_order() == ["中型", "中小", "小微"] and pack.rules.tier_for_fee(2_000_000) == "中型"


def test_an_unknown_value_of_a_closed_set_is_reported(tmp_path):
    pack = full_tiny_pack(tmp_path, "rules.yaml", "  renewal: csm", "  renewal: cms")
    assert [(f, field) for f, field, _ in issues_of(pack)] == [("rules.yaml", "ownership.renewal")]
    assert "'csm' or 'sales'" in pack.issues[0].message and pack.rules.ownership.renewal == "csm"


def test_gazetteer_typo_and_wrong_type(tmp_path):
    pack = full_tiny_pack(tmp_path, "gazetteer.yaml", "industries:\n  烘焙: [烘焙, 面包, 蛋糕, 西点, 甜品, bakery]",
                          "industry:\n  烘焙: 面包")
    assert [(f, field) for f, field, _ in issues_of(pack)] == [("gazetteer.yaml", "industry")]
    assert pack.gazetteer.industries == {} and pack.gazetteer.cities["杭州"] == "浙江"
    assert pack.rules.region_for_province("浙江") == "华东" and "烘焙" in pack.industries()  # from the cases

    pack = full_tiny_pack(tmp_path / "type", "gazetteer.yaml", "  连锁: [连锁, 多门店, 分店, 直营, chain]", "  连锁: 多门店")
    assert [(f, field) for f, field, _ in issues_of(pack)] == [("gazetteer.yaml", "situations.连锁")]
    assert "连锁" not in pack.gazetteer.situations and "加盟" in pack.gazetteer.situations


def test_vendor_typo_and_wrong_type(tmp_path):
    pack = full_tiny_pack(tmp_path, "vendor.yaml", "    what: 门店收银", "    wat: 门店收银")
    assert [str(i) for i in pack.issues] == ["vendor.yaml: key 'products.0.wat': Extra inputs are not permitted"]
    assert pack.vendor.products[0].name == "云铺收银" and pack.vendor.products[0].what == ""

    pack = full_tiny_pack(tmp_path / "type", "vendor.yaml", "sample: true", "sample: maybe")
    assert [(f, field) for f, field, _ in issues_of(pack)] == [("vendor.yaml", "sample")]
    assert pack.vendor.sample is False and pack.vendor.vendor == "云铺" and len(pack.vendor.products) == 8


def test_glossary_typo_and_wrong_type(tmp_path):
    pack = full_tiny_pack(tmp_path, "glossary.yaml", "\nterms:", "\nterm:")
    assert [(f, field) for f, field, _ in issues_of(pack)] == [("glossary.yaml", "term")]
    assert pack.glossary.terms == {}

    pack = full_tiny_pack(tmp_path / "type", "glossary.yaml", "  renewal: [续费, 续约]", "  renewal: 续费")
    assert [(f, field) for f, field, _ in issues_of(pack)] == [("glossary.yaml", "terms.renewal")]
    assert "renewal" not in pack.glossary.terms and pack.glossary.terms["churn"] == ["流失", "不续费"]


def test_a_file_that_is_not_a_mapping_falls_back_to_defaults(tmp_path):
    folder = write_tiny_pack(tmp_path / "knowledge")
    (folder / "vendor.yaml").write_text("- 云铺收银\n- 云铺会员\n", encoding="utf-8")
    pack = load_pack(folder)
    assert [str(i) for i in pack.issues if i.file == "vendor.yaml"] == [
        "vendor.yaml: expected a mapping of keys, defaults used"]
    assert pack.vendor.products == [] and len(pack.cases) == 4
