"""Bounded load test: the real server (uvicorn, loopback, a free port) over the bundled pack, N
concurrent clients for a fixed time asking a mix of questions, searches, the navigation map and the
actions list. Reports requests/s, p50/p95/p99 latency, errors, and the server's resident memory
after warm-up and at the end (growth = a leak suspect). Writes benchmarks/load.json.

    python scripts/bench_load.py [--clients 32] [--seconds 60] [--warmup 10] [--data-dir DIR]

A script, not a test: figures depend on the machine, and a run takes --warmup + --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from copilot.evals import load_questions  # noqa: E402

# Share of each kind of request in the mix.
MIX = {"ask": 0.4, "search": 0.3, "map": 0.15, "actions": 0.15}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "COPILOT_DATA_DIR": str(data_dir), "COPILOT_HOST": "127.0.0.1"}
    env.pop("COPILOT_API_KEYS", None)  # keyless on loopback: the local user is admin
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "copilot.api.asgi:app", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env)
    deadline = time.time() + 300  # a fresh data dir indexes the pack first
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("server did not start")


def requests_mix(questions: list[dict], seed: int = 7):
    """An endless, reproducible stream of (kind, method, path, json) requests in the MIX shares.
    Each question carries a fresh suffix (as a new user question does, it misses the vector cache)."""
    rng = random.Random(seed)
    kinds, weights = list(MIX), list(MIX.values())
    for n in itertools.count():
        kind = rng.choices(kinds, weights)[0]
        question = questions[n % len(questions)]
        text = f"{question['question']}（{n}）"
        if kind == "ask":
            yield kind, "POST", "/api/ask", {"question": text, "role": question["role"]}
        elif kind == "search":
            yield kind, "POST", "/api/search", {"query": text, "k": 5}
        elif kind == "map":
            yield kind, "GET", "/api/map", None
        else:
            yield kind, "GET", "/api/actions?limit=50", None


async def run_load(base: str, clients: int, seconds: float, stream) -> dict:
    """Clients send requests back to back until the time is up; latencies per kind, errors."""
    latencies: dict[str, list[float]] = {kind: [] for kind in MIX}
    errors: dict[str, int] = {}
    deadline = time.perf_counter() + seconds

    async def client_loop(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            kind, method, path, body = next(stream)
            started = time.perf_counter()
            try:
                response = await client.request(method, base + path, json=body)
                failed = None if response.status_code < 400 else str(response.status_code)
            except httpx.HTTPError as exc:
                failed = type(exc).__name__
            latencies[kind].append((time.perf_counter() - started) * 1000)
            if failed:
                errors[f"{kind}:{failed}"] = errors.get(f"{kind}:{failed}", 0) + 1

    started = time.perf_counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    every = [ms for values in latencies.values() for ms in values]
    return {
        "seconds": round(elapsed, 1), "requests": len(every), "requests_per_s": round(len(every) / elapsed, 1),
        "errors": sum(errors.values()), "error_kinds": errors,
        "latency_ms": summary(every),
        "by_kind": {kind: {"requests": len(values), **summary(values)} for kind, values in latencies.items()},
    }


def summary(values: list[float]) -> dict[str, float]:
    return {f"p{int(q * 100)}": round(percentile(values, q), 1) for q in (0.5, 0.95, 0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0, help="Measured time")
    parser.add_argument("--warmup", type=float, default=10.0, help="Load before measuring (caches, lazy imports)")
    parser.add_argument("--data-dir", type=Path, help="An existing data dir (default: a fresh one with the pack)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "load.json")
    args = parser.parse_args()

    questions = [{"question": q.question, "role": q.role}
                 for q in load_questions([ROOT / "evals" / "dev", ROOT / "evals" / "test"])]
    scratch = None if args.data_dir else tempfile.TemporaryDirectory(prefix="copilot-load-")
    data_dir = args.data_dir or Path(scratch.name)
    port = free_port()
    proc = start_server(data_dir, port)
    base = f"http://127.0.0.1:{port}"
    stream = requests_mix(questions)
    try:
        rss_start = rss_mb(proc.pid)
        warm = asyncio.run(run_load(base, args.clients, args.warmup, stream))
        rss_warm = rss_mb(proc.pid)
        measured = asyncio.run(run_load(base, args.clients, args.seconds, stream))
        rss_end = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if scratch:
            scratch.cleanup()
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
        "server": "uvicorn, 1 worker, template mode (no LLM), bundled pack, SQLite",
        "clients": args.clients, "mix": MIX, "warmup": {"seconds": warm["seconds"], "requests": warm["requests"],
                                                          "errors": warm["errors"]},
        **measured,
        "rss_mb": {"started": rss_start, "after_warmup": rss_warm, "end": rss_end,
                   "growth": round(rss_end - rss_warm, 1)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    latency = measured["latency_ms"]
    print(f"{args.clients} clients, {measured['seconds']} s: {measured['requests_per_s']} req/s, "
          f"p50 {latency['p50']} ms, p95 {latency['p95']} ms, p99 {latency['p99']} ms, errors {measured['errors']}")
    for kind, figures in measured["by_kind"].items():
        print(f"  {kind:8} {figures['requests']:>6} requests, p50 {figures['p50']} ms, p95 {figures['p95']} ms")
    print(f"server RSS: {rss_warm} MiB after warm-up, {rss_end} MiB at the end "
          f"({result['rss_mb']['growth']:+} MiB)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
