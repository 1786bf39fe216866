"""Documents and queries are normalised the same way, so script and noise never decide a search."""

from __future__ import annotations

import pytest

from conftest import SEEDS_DIR
from copilot.normalize import normalize

# Mojibake as it really happens: UTF-8 bytes read as Latin-1 by some export tool.
MOJIBAKE = "客户成功经理负责续费".encode("utf-8").decode("latin-1")


@pytest.mark.parametrize(("raw", "expected"), [
    ("客戶成功經理負責續費", "客户成功经理负责续费"),
    ("達成共識(shí)的過程", "达成共识的过程"),                 # pinyin note after a character
    ("應(yīng)該背負(fù)續(xù)費(fèi)率", "应该背负续费率"),  # one note after every character
    ("綠(lǜ)色的(de)設計", "绿色的设计"),                    # ü and the neutral tone
    ("產品市場匹配(PMF)是第一步", "产品市场匹配(PMF)是第一步"),   # English acronym kept
    ("重點客戶觸發安燈(andon)機制", "重点客户触发安灯(andon)机制"),  # lowercase English term kept
    ("找到客戶的決策人(sponsor)", "找到客户的决策人(sponsor)"),
    ("首次價值(first value)", "首次价值(first value)"),
    (MOJIBAKE, "客户成功经理负责续费"),
    ("  续费\t\u3000率  \r\n\r\n\r\n\r\n第二段  ", "续费 率\n\n第二段"),
    ("ＳａａＳ１２３", "SaaS123"),                               # full-width letters and digits
    ("“会员日”活动 &amp; 积分", '"会员日"活动 & 积分'),              # curly quotes, an HTML entity
    ("ﬁle…\x1b[31m红色\x1b[0m", "file...红色"),                    # a ligature, terminal colours
])
def test_normalize_cleans_script_notes_and_noise(raw, expected):
    assert normalize(raw) == expected


def _corpus_lines() -> list[str]:
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = [*(root / "knowledge").glob("*.yaml"), *(root / "evals").rglob("*.jsonl"), *(root / "evals").rglob("*.yaml")]
    if SEEDS_DIR:
        files += [p for p in SEEDS_DIR.rglob("*") if p.suffix in {".md", ".txt"}]
    return [line for path in files for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]


def test_skipping_ftfy_for_plain_text_changes_nothing(monkeypatch):
    """normalize() leaves ftfy out for text it could not change; on every line of the knowledge,
    the evals and the seeds the result is what ftfy would have given."""
    import re

    from copilot import normalize as module

    lines = _corpus_lines()
    skipped = [line for line in lines if module._FTFY_INERT.fullmatch(line)]
    assert len(lines) > 1000 and len(skipped) > len(lines) // 3  # the fast path is taken for real
    fast = [normalize(line) for line in lines]
    monkeypatch.setattr(module, "_FTFY_INERT", re.compile("(?!)"))  # ftfy for every line
    assert fast == [normalize(line) for line in lines]


def test_normalize_is_idempotent():
    samples = ["達成共識(shí)的過程，產品市場匹配(PMF)", MOJIBAKE, "  a \t b\n\n\n\nc ", "安燈(andon)"]
    for text in samples:
        once = normalize(text)
        assert normalize(once) == once


@pytest.mark.skipif(SEEDS_DIR is None, reason="seed documents (../shared/seeds) not available")
def test_traditional_seed_with_pinyin_parses_to_clean_simplified_text():
    """Seed 000 is traditional script with a pinyin note after almost every character."""
    from copilot.knowledge.parsers import parse_file

    raw = (SEEDS_DIR / "000_9af3cfb9b6bf96ad.txt").read_text(encoding="utf-8")
    assert "共識(shí)" in raw
    parsed = parse_file(SEEDS_DIR / "000_9af3cfb9b6bf96ad.txt")
    text = "\n".join(b.text for b in parsed.blocks)
    assert "共识" in text and "续费率" in text
    assert "(shí)" not in text and "(xù)" not in text and "共識" not in text
    # The notes roughly doubled the length of the raw file; they are gone, the words are not.
    assert len(text) < 0.7 * len(raw)
    assert "共识" in parsed.title


@pytest.mark.skipif(SEEDS_DIR is None, reason="seed documents (../shared/seeds) not available")
def test_handbook_keeps_english_terms_in_brackets():
    from copilot.knowledge.parsers import parse_file

    text = "\n".join(b.text for b in parse_file(SEEDS_DIR / "002_2ae599ceb30398c3.txt").blocks)
    for term in ("(first value)", "(quick win)", "(andon)", "(sponsor)"):
        assert term in text


def test_traditional_and_simplified_queries_find_the_same_passage(tmp_path, make_copilot):
    copilot = make_copilot()
    doc = tmp_path / "門店手冊.txt"
    doc.write_text("門店收銀手冊\n交(jiāo)班(bān)對(duì)賬要在每天打烊後完成，差額超過五十元需要店長簽字確認。\n",
                   encoding="utf-8")
    report = copilot.indexer.ingest([str(doc)])
    assert report.added == [str(doc)]
    retriever = copilot.retriever

    traditional = retriever.search("交班對賬差額要誰簽字？", k=3)
    simplified = retriever.search("交班对账差额要谁签字？", k=3)
    assert traditional.results[0].id == simplified.results[0].id
    assert simplified.results[0].source == str(doc)
    # The indexed passage itself is simplified and free of pinyin notes.
    assert "交班对账" in simplified.results[0].text and "(jiāo)" not in simplified.results[0].text

    # Same for a pack item written in simplified, asked in traditional.
    assert retriever.search("會員積分什麼時候過期？", k=1).results[0].id == "faq-points-expiry"
    assert retriever.search("会员积分什么时候过期？", k=1).results[0].id == "faq-points-expiry"
