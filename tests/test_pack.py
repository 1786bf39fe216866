"""The knowledge pack: the shipped pack is complete and clean; a broken pack still loads."""

from __future__ import annotations

from collections import Counter
from textwrap import dedent, indent

import pytest

from conftest import PACK_DIR, write_tiny_pack
from copilot.knowledge.pack import load_pack
from copilot.rules import Rules


@pytest.fixture(scope="module")
def real_pack():
    return load_pack(PACK_DIR)


# The shipped pack ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rules.yaml", "gazetteer.yaml", "vendor.yaml", "cases.yaml", "faqs.yaml",
                                  "playbooks.yaml", "intents.yaml", "plan_templates.yaml"])
def test_shipped_pack_file_exists(name):
    assert (PACK_DIR / name).is_file(), f"knowledge/{name} is missing"


def test_shipped_pack_loads_without_issues(real_pack):
    assert [str(i) for i in real_pack.issues] == []


def test_shipped_case_library_covers_industries_cities_and_tiers(real_pack):
    cases = real_pack.cases
    assert len(cases) >= 60
    assert len({c.industry for c in cases}) >= 8
    assert len({c.city for c in cases}) >= 12
    tiers = Counter(real_pack.rules.tier_for_fee(c.annual_fee) for c in cases)
    assert set(tiers) == {"大型", "中型", "中小", "小微"}, tiers


def test_shipped_faqs_and_playbooks_are_numerous(real_pack):
    assert len(real_pack.faqs) >= 120
    assert len(real_pack.playbooks) >= 25


def test_shipped_items_use_the_pack_vocabulary(real_pack):
    """Case matching and slot extraction only work if cases speak the gazetteer's words."""
    rules, gazetteer = real_pack.rules, real_pack.gazetteer
    products = real_pack.vendor.product_names()
    problems = []
    for case in real_pack.cases:
        if rules.province_for_city(case.city) != case.province:
            problems.append(f"{case.id}: city {case.city} / province {case.province} not in gazetteer")
        if case.industry not in gazetteer.industries:
            problems.append(f"{case.id}: industry {case.industry} not in gazetteer")
        if set(case.situation) - set(gazetteer.situations):
            problems.append(f"{case.id}: unknown situation {set(case.situation) - set(gazetteer.situations)}")
        if set(case.products) - products:
            problems.append(f"{case.id}: unknown product {set(case.products) - products}")
    problems += [f"{f.id}: unknown product {f.product}" for f in real_pack.faqs if f.product and f.product not in products]
    assert problems == []


def test_shipped_item_ids_are_unique_across_the_pack(real_pack):
    """Every item becomes one indexed passage keyed by its id; a clash would hide one of them."""
    counts = Counter(chunk.id for chunk in real_pack.chunks())
    assert [i for i, n in counts.items() if n > 1] == []


# Loading errors ----------------------------------------------------------------------------------
def test_broken_items_are_reported_and_skipped(tmp_path):
    folder = write_tiny_pack(tmp_path / "knowledge")
    cases = (folder / "cases.yaml").read_text(encoding="utf-8")
    cases += indent(dedent("""\
        - id: case-broken-fee
          company: 坏数据（示例）
          industry: 烘焙
          city: 杭州
          province: 浙江
          annual_fee: 十万
          products: [云铺收银]
          challenge: x
          actions: [x]
          results: [{metric: m, after: 1}]
          time_to_first_value_days: 3
          summary: x
        - id: case-bakery-hz
          company: 重复的编号（示例）
          industry: 烘焙
          city: 杭州
          province: 浙江
          annual_fee: 1000
          products: [云铺收银]
          challenge: x
          actions: [x]
          results: [{metric: m, after: 1}]
          time_to_first_value_days: 3
          summary: x
    """), "  ")
    (folder / "cases.yaml").write_text(cases, encoding="utf-8")
    faqs = (folder / "faqs.yaml").read_text(encoding="utf-8") + indent(dedent("""\
        - id: faq-no-answer
          question: 这条没有答案
          category: 收银
        - just a string
    """), "  ")
    (folder / "faqs.yaml").write_text(faqs, encoding="utf-8")
    (folder / "playbooks.yaml").write_text("playbooks:\n  - id: pb-x\n    title: [unclosed\n", encoding="utf-8")

    pack = load_pack(folder)

    issues = {(i.file, i.item, i.field) for i in pack.issues}
    assert ("cases.yaml", "case-broken-fee", "annual_fee") in issues
    assert ("cases.yaml", "case-bakery-hz", "id") in issues                  # duplicate id
    assert ("faqs.yaml", "faq-no-answer", "answer") in issues
    assert any(i.file == "faqs.yaml" and i.item == "#6" for i in pack.issues)  # not a mapping
    assert any(i.file == "playbooks.yaml" and "YAML" in i.message for i in pack.issues)
    assert ("intents.yaml", "-", "-") in issues                              # missing file
    message = next(str(i) for i in pack.issues if i.item == "case-broken-fee")
    assert "cases.yaml" in message and "case-broken-fee" in message and "annual_fee" in message

    # Everything else still loads: the good cases and FAQs, the rules.
    assert {c.id for c in pack.cases} == {"case-bakery-hz", "case-tea-cd", "case-apparel-gz", "case-fresh-bj"}
    assert next(c for c in pack.cases if c.id == "case-bakery-hz").company == "麦香烘焙（示例）"  # first one wins
    assert {f.id for f in pack.faqs} == {"faq-refund", "faq-points-expiry", "faq-discount-approval", "faq-printer"}
    assert pack.playbooks == []
    assert pack.rules.tier_for_fee(2_000_000) == "大型"


def test_invalid_rules_fall_back_to_defaults_and_are_reported(tmp_path):
    folder = write_tiny_pack(tmp_path / "knowledge")
    (folder / "rules.yaml").write_text("size_tiers:\n  - {name: 大型, min_fee: lots}\n", encoding="utf-8")
    pack = load_pack(folder)
    assert any(i.file == "rules.yaml" and "min_fee" in i.field for i in pack.issues)
    assert pack.rules.tier_for_fee(200_000) == "中型"
    assert len(pack.cases) == 4


def test_a_list_missing_its_key_is_reported(tmp_path):
    folder = write_tiny_pack(tmp_path / "knowledge")
    (folder / "faqs.yaml").write_text("- id: faq-a\n  question: q\n", encoding="utf-8")
    pack = load_pack(folder)
    assert any(i.file == "faqs.yaml" and i.field == "faqs" for i in pack.issues)
    assert pack.faqs == [] and len(pack.cases) == 4


# Size tiers ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("fee", "tier"), [
    (3_000_000, "大型"), (1_000_000, "大型"),
    (999_999, "中型"), (600_000, "中型"),      # gap 50万–100万 folds into 中型
    (500_000, "中型"), (100_000, "中型"),
    (99_999, "中小"), (10_000, "中小"),
    (9_999, "小微"), (8_000, "小微"),          # gap 5000–1万 folds into 小微
    (4_999, "小微"), (0, "小微"),
])
def test_tier_rule_of_the_shipped_rules(real_pack, fee, tier):
    assert real_pack.rules.tier_for_fee(fee) == tier


def test_tier_rule_is_data_not_code(tmp_path):
    custom = Rules.from_data({"size_tiers": [{"name": "大型", "min_fee": 300_000}, {"name": "中小", "min_fee": 0}]})
    assert custom.tier_for_fee(400_000) == "大型"
    assert custom.tier_for_fee(200_000) == "中小"


def test_case_passages_carry_tier_and_region(real_pack):
    chunk = next(c for c in real_pack.chunks() if c.kind == "case")
    case = real_pack.case(chunk.id)
    assert chunk.meta["tier"] == real_pack.rules.tier_for_fee(case.annual_fee)
    assert chunk.meta["region"] == real_pack.rules.region_for_province(case.province)
    assert chunk.meta["tier"] in chunk.text and case.city in chunk.text



def test_the_next_command_reads_an_edited_pack_file_not_the_cached_one(tmp_path, tiny_pack_dir, make_copilot):
    """The parsed pack is kept in the data dir for the next process; an edit to any file shows."""
    import shutil

    import yaml

    pack_dir = tmp_path / "pack"
    shutil.copytree(tiny_pack_dir, pack_dir)
    before = make_copilot(knowledge_dir=pack_dir).base_pack
    cached = list((tmp_path / "data-main" / "cache").glob("pack-*.pickle"))
    assert len(cached) == 1
    assert make_copilot(knowledge_dir=pack_dir).base_pack.faqs == before.faqs  # read from the cache

    data = yaml.safe_load((pack_dir / "faqs.yaml").read_text(encoding="utf-8"))
    data["faqs"][0]["question"] = "改过的标准问：小票纸怎么换？"
    (pack_dir / "faqs.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    after = make_copilot(knowledge_dir=pack_dir).base_pack
    assert after.faqs[0].question == "改过的标准问：小票纸怎么换？"
    assert list((tmp_path / "data-main" / "cache").glob("pack-*.pickle")) != cached
