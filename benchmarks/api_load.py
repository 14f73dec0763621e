"""Bounded load test of the REST API on loopback: a real ``python -m recsys serve`` process, fixed request count.

The client is a minimal asyncio HTTP/1.1 keep-alive client (a few microseconds of CPU per request) so that it
takes as little as possible of the 2 cores from the server it measures. Each run sends ``--requests`` requests
over ``--concurrency`` connections, users drawn with a seed from the store's known users, and stops early at
``--time-limit`` seconds. Reports throughput and latency percentiles per run and the median over runs.

    python benchmarks/api_load.py --artifacts /tmp/demo --requests 3000 --runs 5
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
    from recsys.recommend import load_recommender_service
    ids = load_recommender_service(artifacts).user_ids
    return [int(u) for u in np.random.default_rng(seed).choice(ids, size=n, replace=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", default=os.environ.get("RECSYS_ARTIFACTS", "artifacts"))
    ap.add_argument("--endpoint", choices=["recommend", "search", "similar"], default="recommend")
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per run before it stops early")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    users = known_users(args.artifacts, args.requests, args.seed)
    if args.endpoint == "recommend":
        reqs = [request_bytes("POST", "/recommend", {"user_id": u, "num_recommendations": 5, "diversity_weight": 0.3})
                for u in users]
    elif args.endpoint == "search":
        words = ["samsung smartphone", "cheap headphones", "kitchen mixer", "apple", "premium laptop", "bosch"]
        reqs = [request_bytes("GET", f"/search?q={words[i % len(words)].replace(' ', '+')}&k=10", None)
                for i in range(args.requests)]
    else:
        from recsys.products import ProductService
        ids = ProductService(args.artifacts).ids
        pick = np.random.default_rng(args.seed).choice(ids, size=args.requests)
        reqs = [request_bytes("GET", f"/products/{int(p)}/similar?k=10", None) for p in pick]
    port = free_port()
    proc = start_server(args.artifacts, port, args.workers)
    try:
        asyncio.run(run_once(port, reqs[: max(100, args.requests // 10)], args.concurrency, args.time_limit))  # warm
        runs = []
        for i in range(args.runs):
            cpu0, own0 = cpu_seconds(proc.pid), time.process_time()
            r = asyncio.run(run_once(port, reqs, args.concurrency, args.time_limit))
            r["server_cpu_ms_per_request"] = round((cpu_seconds(proc.pid) - cpu0) * 1000 / max(r["requests"], 1), 3)
            r["client_cpu_ms_per_request"] = round((time.process_time() - own0) * 1000 / max(r["requests"], 1), 3)
            runs.append(r)
            print(f"run {i + 1}: {r}", file=sys.stderr)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    med = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50_ms", "p90_ms", "p99_ms",
                                                              "server_cpu_ms_per_request",
                                                              "client_cpu_ms_per_request")}
    load = os.getloadavg()
    print(json.dumps({"load_average_1_5_15": [round(x, 2) for x in load], "endpoint": args.endpoint, "requests": args.requests, "concurrency": args.concurrency,
                      "workers": args.workers, "runs": args.runs, "cores": os.cpu_count(), "median": med,
                      "non_200": sum(r["non_200"] for r in runs), "all_runs": runs}, indent=2))


if __name__ == "__main__":
    main()
