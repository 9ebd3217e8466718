"""The `adapt` command line as a real process: help, exit codes, light imports (the task-contract tests cover each command)."""
from __future__ import annotations

import os
import subprocess
import sys



ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def adapt_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "adapt.cli", *args], capture_output=True, text=True, env=ENV, timeout=600)
    if check and out.returncode != 0:
        raise AssertionError(f"adapt {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


def test_help_is_useful():
    top = adapt_cli("--help").stdout
    for cmd in ("serve", "predict", "tune", "export"):
        assert cmd in top
        sub = adapt_cli(cmd, "--help").stdout
        assert "Usage" in sub and len(sub) > 200
    assert "--max-batch-size" in adapt_cli("serve", "--help").stdout


def test_predict_bad_path_is_a_clear_error(tmp_path):
    out = adapt_cli("predict", str(tmp_path / "missing"), "hello", check=False)
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_predict_never_imports_fastai_or_flair(saved_dir):
    code = (
        "import sys\nfrom adapt.cli import app\n"
        "try:\n    app(['predict', sys.argv[1], 'a goal in the match'])\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('fastai', 'flair') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code, str(saved_dir)], capture_output=True, text=True, env=ENV, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
