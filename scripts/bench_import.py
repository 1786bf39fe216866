"""Spreadsheet import speed: an FAQ sheet of N generated rows (sample data) imported into a fresh
data dir, rows/s and vectors/s next to the encoder's own rate on the same texts; then the same
sheet again (nothing to embed), the sheet with one answer changed, and the one change that takes the
knowledge past exact search (Chroma is then filled with every vector, once). Prints the figures and
writes benchmarks/import.json.

    python scripts/bench_import.py [--rows 1000 10000]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from copilot.knowledge.catalog import vector_texts  # noqa: E402
from copilot.knowledge.pack import _faq_chunk  # noqa: E402
from copilot.knowledge.sheets import load_sheet  # noqa: E402
from copilot.service import Copilot  # noqa: E402
from copilot.settings import Settings  # noqa: E402

TOPICS = ["会员积分", "储值卡", "小票打印", "扫码支付", "退款", "库存盘点", "门店调拨", "优惠券", "拼团", "外卖接单",
          "交班对账", "会员等级", "短信群发", "商品上架", "价格同步", "发票", "员工权限", "数据看板"]
ASKS = ["怎么设置", "为什么失败", "在哪里查看", "能不能批量处理", "多久生效", "出错了怎么办", "可以撤销吗", "有什么限制"]


def write_sheet(path: Path, rows: int, seed: int = 7, changed: int | None = None) -> None:
    """Sample FAQ rows: a topic, a way of asking and a row number make each question distinct."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["标准问", "相似问", "答案", "分类"])
        for i in range(rows):
            topic, ask = rng.choice(TOPICS), rng.choice(ASKS)
            answer = f"（示例数据）{topic}{ask}：在后台「设置 > {topic}」里操作，第 {i} 号规则适用，保存后 {rng.randint(1, 30)} 分钟生效。"
            if i == changed:
                answer += "已更新。"
            writer.writerow([f"{topic}{ask}？（第{i}条）", f"{topic}问题{i}|{ask}{topic}{i}", answer, topic])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1000])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "import.json")
    args = parser.parse_args()
    results = []
    for rows in args.rows:
        work = Path(tempfile.mkdtemp(prefix="copilot-bench-import-"))
        sheet = work / "faq.csv"
        write_sheet(sheet, rows)
        copilot = Copilot(Settings(_env_file=None, data_dir=work / "data"))
        copilot.retriever  # the pack indexed first: only the sheet is measured
        texts = [t for item in load_sheet(sheet).items for t in vector_texts(_faq_chunk(item))]
        # Time inside the encoder during the import: what is left is the import's own work. It does
        # not drift with the machine's speed over a long run, unlike the standalone rate measured
        # in a short burst afterwards (the two are reported side by side).
        encoding = {"s": 0.0}
        encode = copilot.embedder.passages

        def timed_encode(batch: list[str]):
            begun = time.perf_counter()
            try:
                return encode(batch)
            finally:
                encoding["s"] += time.perf_counter() - begun

        copilot.embedder.passages = timed_encode  # type: ignore[method-assign]
        started = time.perf_counter()
        first = copilot.ingest([str(sheet)])
        first_s = time.perf_counter() - started
        copilot.embedder.passages = encode  # type: ignore[method-assign]
        sample = texts[: min(len(texts), 800)]
        started = time.perf_counter()
        for i in range(0, len(sample), 16):
            copilot.embedder.passages(sample[i:i + 16])
        encoder_rate = len(sample) / (time.perf_counter() - started)
        started = time.perf_counter()
        again = copilot.ingest([str(sheet)])
        again_s = time.perf_counter() - started
        write_sheet(sheet, rows, changed=rows // 2)
        started = time.perf_counter()
        one = copilot.ingest([str(sheet)])
        one_s = time.perf_counter() - started
        # The knowledge outgrowing exact search: the next change fills Chroma with every vector.
        grown = Copilot(Settings(_env_file=None, data_dir=work / "data",
                                 exact_search_max_vectors=copilot.catalog.vector_count() - 1))
        write_sheet(sheet, rows, changed=rows // 3)
        started = time.perf_counter()
        grown.ingest([str(sheet)])
        fill_s = time.perf_counter() - started
        filled = grown.store.count()
        embedded = first.items.embedded if first.items else 0
        results.append({
            "rows": rows, "vectors": len(texts), "import_s": round(first_s, 1), "rows_per_s": round(rows / first_s, 1),
            "vectors_per_s": round(embedded / first_s, 1), "encoder_vectors_per_s": round(encoder_rate, 1),
            "share_of_encoder_rate": round(embedded / first_s / encoder_rate, 2),
            "encoding_s": round(encoding["s"], 1), "share_of_time_encoding": round(encoding["s"] / first_s, 3),
            "reimport_unchanged_s": round(again_s, 2), "reimport_unchanged_embedded": again.items.embedded,
            "one_row_changed_s": round(one_s, 2), "one_row_changed_embedded": one.items.embedded,
            "store_fill_s": round(fill_s, 1), "store_filled_vectors": filled})
        r = results[-1]
        print(f"{rows} rows ({r['vectors']} vectors): {r['import_s']} s, {r['rows_per_s']} rows/s, "
              f"{r['vectors_per_s']} vectors/s = {r['share_of_encoder_rate']:.0%} of the encoder's "
              f"{r['encoder_vectors_per_s']} /s measured alone afterwards; {r['share_of_time_encoding']:.1%} of the "
              f"import's time in the encoder ({r['encoding_s']} s); unchanged re-import {r['reimport_unchanged_s']} s "
              f"({r['reimport_unchanged_embedded']} embedded); one row changed {r['one_row_changed_s']} s "
              f"({r['one_row_changed_embedded']} embedded); past exact search, Chroma filled with "
              f"{r['store_filled_vectors']} vectors in {r['store_fill_s']} s")
    out = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
           "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, ensure_ascii=False, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
