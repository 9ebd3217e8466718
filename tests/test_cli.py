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


def test_an_empty_input_file_and_a_bad_option_are_named_in_the_users_terms(tiny_cls_dir, tmp_path, capsys):
    import pytest

    from adapt import EasySequenceClassifier
    from adapt.errors import InvalidInputError

    from .contract_utils import run_cli

    empty = tmp_path / "texts.txt"
    empty.write_text("\n\n")
    code, _, err = run_cli(capsys, "predict", tiny_cls_dir, "--file", empty)
    assert code == 2 and "texts.txt' holds no inputs: it is empty" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "predict", tiny_cls_dir, "a text", "--text-col", "review")
    assert code == 2 and "--text-col names a column of a .csv/.tsv --file" in err
    code, _, err = run_cli(capsys, "predict", tiny_cls_dir, "a text", "--param", "top_kk=2")
    assert code == 2 and "for sequence_classification." in err and "HFClassifier" not in err
    with pytest.raises(InvalidInputError, match=r"for EasySequenceClassifier\.tag_text\. Accepted") as e:
        EasySequenceClassifier().tag_text("a text", tiny_cls_dir, top_kk=2)
    assert "HFClassifier" not in str(e.value)
