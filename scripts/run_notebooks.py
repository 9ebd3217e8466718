"""Execute tutorial notebooks at their default budget and commit-ready: outputs and plots written back in place.

    python scripts/run_notebooks.py                      # every notebook in nbs/
    python scripts/run_notebooks.py nbs/02_*.ipynb       # some of them

Each notebook runs in a fresh kernel whose working directory is a scratch folder (models it saves land there,
not in the repository), offline. The tests execute a scratch copy at a tiny budget and never write these files.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def run(path: Path, timeout: int) -> float:
    """Execute `path` in a scratch folder and write it back with its outputs; returns the seconds taken."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="adapt-nb-") as scratch:
        client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": scratch}})
        client.execute()
    for cell in nb.cells:  # outputs stay; run timestamps would make every re-run a diff
        cell.metadata.pop("execution", None)
    tmp = path.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, path)  # atomic: a failed run never leaves a half-written notebook
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in nbs/")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = parser.parse_args(argv)
    # budget variables (ADAPT_NB_*) left in the environment would shrink the committed run
    stray = sorted(k for k in os.environ if k.startswith("ADAPT_NB_"))
    if stray:
        print(f"unset {', '.join(stray)} first: the committed notebooks run at their default budget", file=sys.stderr)
        return 2
    os.environ.update(OFFLINE)
    for path in args.notebooks or sorted((ROOT / "nbs").glob("*.ipynb")):
        print(f"{path.name}: {run(path, args.timeout):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
