"""Load test for `adapt serve`: N concurrent clients on loopback; prints requests/s, p50/p99 latency, peak RSS.

    python bench/serve_load.py MODEL_DIR [--clients 50] [--requests 500] [--texts-per-request 1]

Starts the server as a subprocess on a free 127.0.0.1 port, runs a bounded number of requests, stops it with
SIGTERM and writes the figures as JSON to stdout. Traffic never leaves loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serving_utils import free_port, http, wait_ready

TEXTS = [
    "Shares in the bank fell sharply after profits dropped",
    "The striker scored twice as the team won the match",
    "MPs voted on the budget bill late on Tuesday",
    "The new phone has a faster chip and a better camera",
    "The film won three awards at the ceremony last night",
]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--texts-per-request", type=int, default=1)
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--text-chars", type=int, default=0, help="repeat each text to about this many characters")
    a = p.parse_args()
    texts = [(t + ". ") * max(1, a.text_chars // (len(t) + 2)) if a.text_chars else t for t in TEXTS]
    port = free_port()
    cmd = [sys.executable, "-m", "adapt.cli", "serve", a.model_dir, "--port", str(port), "--log-level", "warning",
           "--max-batch-size", str(a.max_batch_size), "--max-wait-ms", str(a.max_wait_ms)]
    proc = subprocess.Popen(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        url = f"{base}/predict"

        def one(i: int) -> float:
            body = {"texts": [texts[(i + k) % len(texts)] for k in range(a.texts_per_request)]}
            t = time.perf_counter()
            status, _ = http("POST", url, body, timeout=120)
            if status != 200:
                raise RuntimeError(f"status {status}")
            return time.perf_counter() - t

        for i in range(5):
            one(i)  # warm-up
        start = time.perf_counter()
        with ThreadPoolExecutor(a.clients) as pool:
            lat = sorted(pool.map(one, range(a.requests)))
        wall = time.perf_counter() - start
        metrics = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
        count = sum_ = 0.0
        for line in metrics.splitlines():
            if line.startswith("adapt_model_batch_size_count"):
                count = float(line.split()[-1])
            elif line.startswith("adapt_model_batch_size_sum"):
                sum_ = float(line.split()[-1])
        out = {
            "clients": a.clients,
            "requests": a.requests,
            "texts_per_request": a.texts_per_request,
            "text_chars": a.text_chars,
            "requests_per_s": round(a.requests / wall, 1),
            "p50_ms": round(1000 * statistics.median(lat), 1),
            "p99_ms": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1),
            "mean_model_batch": round(sum_ / count, 1) if count else None,
            "server_peak_rss_mb": round(peak_rss_mb(proc.pid), 1),
        }
        sys.stdout.write(json.dumps(out) + "\n")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
