"""Bounded load test of the REST API on loopback: real ``python -m recsys serve`` processes, fixed request counts.

The client is a minimal asyncio HTTP/1.1 keep-alive client (a few microseconds of CPU per request) so that it
takes as little as possible of the 2 cores from the server it measures. One run of the benchmark measures, in
the same session and interleaved run by run (so that the other jobs on a shared machine weigh on all of them
alike): a sequential single-client baseline (``--workers 1``, one connection) and ``--clients`` concurrent
clients (default 20, one connection each) against a server with each of ``--worker-counts`` (default 1 and 2)
uvicorn workers. Each run sends ``--requests`` requests (users drawn with a seed from the store's known users)
and stops early at ``--time-limit`` seconds. Reports throughput and p50/p90/p99 per run, the median over
``--runs``, and the ratios against the sequential baseline.

    python benchmarks/api_load.py --artifacts /tmp/demo --requests 1000 --runs 5
    python benchmarks/api_load.py --artifacts /tmp/demo --endpoint mixed   # recommend + similar + search
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # loopback only


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(artifacts: str, port: int, workers: int) -> subprocess.Popen:
    """``python -m recsys serve`` on loopback; returns once /health answers."""
    proc = subprocess.Popen([sys.executable, "-m", "recsys", "serve", "--host", HOST, "--port", str(port),
                             "--artifacts", artifacts, "--workers", str(workers)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(480):
        try:
            health = json.loads(urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=1).read())
            if not health["recommender"]:
                proc.terminate()
                raise SystemExit(f"the API has no recommender: {health['problems']}")
            return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(proc.stderr.read().decode()[-2000:])
            time.sleep(0.25)
    proc.terminate()
    raise SystemExit("the API did not start within 120 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants (uvicorn workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                f = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(d.name)] = (int(f[1]), (int(f[11]) + int(f[12])) / tick)  # ppid, utime + stime
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += stats.get(p, (0, 0.0))[1]
        todo += [c for c, (pp, _) in stats.items() if pp == p]
    return total


def request_bytes(method: str, path: str, body: dict | None) -> bytes:
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n" \
           f"Content-Length: {len(data)}\r\n\r\n"
    return head.encode() + data


async def worker(port: int, reqs: list[bytes], latencies: list[float], statuses: list[int], deadline: float) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        for req in reqs:
            if time.perf_counter() > deadline:
                return
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            statuses.append(int(head[9:12]))
    finally:
        writer.close()


async def run_once(port: int, reqs: list[bytes], concurrency: int, time_limit: float) -> dict:
    latencies: list[float] = []
    statuses: list[int] = []
    chunks = [reqs[i::concurrency] for i in range(concurrency)]
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(port, c, latencies, statuses, t0 + time_limit) for c in chunks))
    wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {"requests": len(lat), "seconds": round(wall, 3), "rps": round(len(lat) / wall, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 2), "p90_ms": round(float(np.percentile(lat, 90)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2), "non_200": int(sum(s != 200 for s in statuses))}


def known_users(artifacts: str, n: int, seed: int) -> list[int]:
    from recsys.serving.service import load_recommender_service
    ids = load_recommender_service(artifacts).user_ids
    return [int(u) for u in np.random.default_rng(seed).choice(ids, size=n, replace=True)]


WORDS = ["samsung smartphone", "cheap headphones", "kitchen mixer", "apple", "premium laptop", "bosch"]


def build_requests(artifacts: str, endpoint: str, n: int, seed: int) -> list[bytes]:
    """``n`` requests for ``endpoint``; ``mixed`` is half POST /recommend, a quarter each /similar and /search."""
    rng = np.random.default_rng(seed)
    users = known_users(artifacts, n, seed)
    from recsys.products.service import ProductService
    products = rng.choice(ProductService(artifacts).ids, size=n)
    make = {"recommend": lambda i: request_bytes("POST", "/recommend", {"user_id": users[i], "num_recommendations": 5,
                                                                         "diversity_weight": 0.3}),
            "search": lambda i: request_bytes("GET", f"/search?q={WORDS[i % len(WORDS)].replace(' ', '+')}&k=10", None),
            "similar": lambda i: request_bytes("GET", f"/products/{int(products[i])}/similar?k=10", None)}
    if endpoint != "mixed":
        return [make[endpoint](i) for i in range(n)]
    kinds = ["recommend", "similar", "recommend", "search"]
    return [make[kinds[i % 4]](i) for i in range(n)]


def measure(proc: subprocess.Popen, port: int, reqs: list[bytes], clients: int, time_limit: float) -> dict:
    """One run against a started server, with its CPU per request and the client's."""
    cpu0, own0 = cpu_seconds(proc.pid), time.process_time()
    r = asyncio.run(run_once(port, reqs, clients, time_limit))
    r["server_cpu_ms_per_request"] = round((cpu_seconds(proc.pid) - cpu0) * 1000 / max(r["requests"], 1), 3)
    r["client_cpu_ms_per_request"] = round((time.process_time() - own0) * 1000 / max(r["requests"], 1), 3)
    return r


MEDIAN_KEYS = ("rps", "p50_ms", "p90_ms", "p99_ms", "server_cpu_ms_per_request", "client_cpu_ms_per_request")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", default=os.environ.get("RECSYS_ARTIFACTS", "artifacts"))
    ap.add_argument("--endpoint", choices=["recommend", "search", "similar", "mixed"], default="recommend")
    ap.add_argument("--requests", type=int, default=1000, help="requests per run and scenario")
    ap.add_argument("--clients", type=int, default=20, help="concurrent clients (connections) of the load scenarios")
    ap.add_argument("--worker-counts", type=int, nargs="+", default=[1, 2], help="uvicorn workers to compare")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per run before it stops early")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    reqs = build_requests(args.artifacts, args.endpoint, args.requests, args.seed)
    scenarios = [("sequential, 1 worker", 1, 1)] + [(f"{args.clients} clients, {w} worker{'s' * (w > 1)}", w,
                                                      args.clients) for w in args.worker_counts]
    servers: dict[int, tuple[subprocess.Popen, int]] = {}
    load_before = os.getloadavg()
    try:
        for w in sorted({w for _, w, _ in scenarios}):
            port = free_port()
            servers[w] = (start_server(args.artifacts, port, w), port)
            warm = reqs[: max(100, args.requests // 10)]
            asyncio.run(run_once(port, warm, max(args.worker_counts) * 2, args.time_limit))
        runs: dict[str, list[dict]] = {name: [] for name, _, _ in scenarios}
        for i in range(args.runs):  # interleaved: a busy moment of the machine hits every scenario alike
            for name, w, clients in scenarios:
                proc, port = servers[w]
                r = measure(proc, port, reqs, clients, args.time_limit)
                runs[name].append(r)
                print(f"run {i + 1} {name}: {r}", file=sys.stderr)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=10)
    med = {name: {k: statistics.median(r[k] for r in rs) for k in MEDIAN_KEYS} for name, rs in runs.items()}
    base = med[scenarios[0][0]]
    ratios = {name: {"rps_vs_sequential": round(m["rps"] / base["rps"], 2),
                     "p50_vs_sequential": round(m["p50_ms"] / base["p50_ms"], 1),
                     "p99_vs_sequential": round(m["p99_ms"] / base["p99_ms"], 1)}
              for name, m in med.items() if name != scenarios[0][0]}
    print(json.dumps({"load_average_1_5_15_before": [round(x, 2) for x in load_before],
                      "load_average_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
                      "endpoint": args.endpoint, "requests_per_run": args.requests, "clients": args.clients,
                      "runs": args.runs, "cores": os.cpu_count(), "median": med, "ratios": ratios,
                      "non_200": {name: sum(r["non_200"] for r in rs) for name, rs in runs.items()},
                      "all_runs": runs}, indent=2))


if __name__ == "__main__":
    main()
