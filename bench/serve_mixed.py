"""Mixed, hostile load on `adapt serve`: short requests beside maximal ones and poisoned ones; prints JSON.

    python bench/serve_mixed.py MODEL_DIR [--seconds 20] [--clients 50] [--python PYTHON] [--pythonpath DIR]

Phase 1 (fairness): one maximal request at a time (20 texts of 19,950 characters, long_text=window) runs in a
loop while 4 clients send short requests; reports the short requests' p50/p99.
Phase 2 (load): `--clients` clients send short requests (1 in 10 a 2,000-character one) for `--seconds`, while
one poisoned request a second (a lone surrogate, valid JSON) and a maximal one every 3 s arrive; reports failed
good requests, 503s, short p50/p99 and the server's RSS at start and end. `--pythonpath` runs another checkout's
adapt (e.g. an older commit in a git worktree) for before/after figures. Traffic stays on loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serving_utils import free_port, http, wait_ready

SHORT = "Shares in the bank fell sharply after profits dropped"
LONG = ("The markets moved as traders weighed the figures. " * 400)[:19_950]
MAXIMAL = {"texts": [LONG] * 20, "parameters": {"long_text": "window"}}
POISON = b'{"texts": ["abc \\ud800"]}'


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    return round(1000 * sorted(values)[min(len(values) - 1, int(q * len(values)))], 1) if values else float("nan")


def fairness(base: str, seconds: float) -> dict[str, float]:
    stop = time.monotonic() + seconds
    lat: list[float] = []

    def maximal() -> None:
        while time.monotonic() < stop:
            http("POST", f"{base}/predict", MAXIMAL, timeout=300)

    def short() -> None:
        while time.monotonic() < stop:
            t = time.perf_counter()
            if http("POST", f"{base}/predict", {"texts": [SHORT]}, timeout=300)[0] == 200:
                lat.append(time.perf_counter() - t)

    threads = [threading.Thread(target=maximal)] + [threading.Thread(target=short) for _ in range(4)]
    threads[0].start()
    time.sleep(0.5)
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join()
    return {"short_requests": len(lat), "short_p50_ms": pct(lat, 0.5), "short_p99_ms": pct(lat, 0.99)}


def load(base: str, pid: int, seconds: float, clients: int) -> dict[str, object]:
    stop = time.monotonic() + seconds
    lat: list[float] = []
    counts = {"good_failed": 0, "busy_503": 0, "poisoned_422": 0, "maximal_ok": 0}
    lock = threading.Lock()
    rss_start = rss_mb(pid)

    def client(i: int) -> None:
        n = 0
        while time.monotonic() < stop:
            n += 1
            text = SHORT if (n + i) % 10 else LONG[:2000]
            t = time.perf_counter()
            status, _ = http("POST", f"{base}/predict", {"texts": [text]}, timeout=300)
            with lock:
                if status == 200:
                    lat.append(time.perf_counter() - t)
                elif status == 503:
                    counts["busy_503"] += 1
                else:
                    counts["good_failed"] += 1

    def hostile() -> None:
        k = 0
        while time.monotonic() < stop:
            k += 1
            if http("POST", f"{base}/predict", raw=POISON, timeout=60)[0] == 422:
                with lock:
                    counts["poisoned_422"] += 1
            if k % 3 == 0:
                threading.Thread(target=maximal_once).start()
            time.sleep(1.0)

    def maximal_once() -> None:
        if http("POST", f"{base}/predict", MAXIMAL, timeout=300)[0] == 200:
            with lock:
                counts["maximal_ok"] += 1

    with ThreadPoolExecutor(clients + 1) as pool:
        pool.submit(hostile)
        list(pool.map(client, range(clients)))
    return {**counts, "good_ok": len(lat), "short_p50_ms": pct(lat, 0.5), "short_p99_ms": pct(lat, 0.99),
            "rss_start_mb": round(rss_start, 1), "rss_end_mb": round(rss_mb(pid), 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--pythonpath", default=None, help="run the adapt found here instead")
    p.add_argument("--serve-args", default="", help="extra `adapt serve` options, e.g. '--max-tokens 200000'")
    a = p.parse_args()
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **({"PYTHONPATH": a.pythonpath} if a.pythonpath else {})}
    cmd = [a.python, "-m", "adapt.cli", "serve", a.model_dir, "--port", str(port), "--log-level", "warning", *a.serve_args.split()]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=a.pythonpath or None)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, timeout=300)
        out = {"fairness": fairness(base, a.seconds / 2), "load": load(base, proc.pid, a.seconds, a.clients)}
        sys.stdout.write(json.dumps(out) + "\n")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
