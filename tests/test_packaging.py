"""The package as people install it: its free PyPI name everywhere, the extras table, the tested versions."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import warnings
from configparser import ConfigParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _settings() -> dict[str, str]:
    cfg = ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini", encoding="utf-8")
    return dict(cfg["DEFAULT"])


def _bare(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]


def test_the_distribution_name_is_adapt_tuner_everywhere() -> None:
    from adapt.errors import DISTRIBUTION, install_hint

    assert _settings()["lib_name"] == DISTRIBUTION == "adapt-tuner"
    assert install_hint("flair") == "pip install 'adapt-tuner[flair]'"
    texts = [ROOT / "README.md", ROOT / "docker" / "README.md", *(ROOT / "adapt").rglob("*.py"), *(ROOT / "docker").glob("Dockerfile*")]
    for path in texts:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"pip install ['\"]?adapt(\[|['\"\s]|$)", text), f"{path} installs PyPI's other 'adapt'"
        assert "uninstall -y adapt " not in text, path
    assert "git clone https://github.com/" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_extras_table_matches_settings_ini() -> None:
    settings = _settings()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `\[(\w+)\]` +\| (.+?) *\|$", readme, flags=re.M))
    extras = {key[: -len("_requirements")] for key in settings if key.endswith("_requirements")}
    extras -= {"asset"}
    declared = {"train", "flair", "serve", "ort", "onnx", "peft", "search", "dev"}
    assert extras == declared, extras
    assert set(rows) == declared | {"all"}, rows
    for extra in declared - {"dev"}:
        for req in settings[f"{extra}_requirements"].split():
            assert _bare(req) in rows[extra], f"README's [{extra}] row lacks {_bare(req)}"
    for req in settings["dev_requirements"].split():
        assert _bare(req) in rows["dev"], f"README's [dev] row lacks {_bare(req)}"
    assert "not part of this release" not in readme


def test_dependencies_outside_the_tested_versions_warn_once_naming_the_range(monkeypatch) -> None:
    from adapt import versions

    assert versions.untested() == {}, "this environment is outside adapt.versions.TESTED: update one of them"
    monkeypatch.setattr(versions, "TESTED", {"torch": ("9.0", "9.1"), "not-installed-pkg": ("1.0", "2.0")})
    monkeypatch.setattr(versions, "_warned", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        versions.check_versions()
        versions.check_versions()
    assert len(caught) == 1 and issubclass(caught[0].category, versions.UntestedVersionWarning)
    assert "torch >=9.0,<9.1" in str(caught[0].message) and "2.13" in str(caught[0].message)


@pytest.mark.parametrize(("version", "release"), [("2.13.0+cpu", (2, 13, 0)), ("4.57.6", (4, 57, 6)), ("5.0.0rc1", (5, 0, 0)),
                                                  ("2.8.dev0", (2, 8))])
def test_release_numbers_ignore_local_and_pre_release_parts(version: str, release: tuple[int, ...]) -> None:
    from adapt.versions import _release

    assert _release(version) == release


# ---------------------------------------------------------------------------------------------------
# README's install commands, against a wheel built from this tree, in a fresh venv
# ---------------------------------------------------------------------------------------------------
def _extras() -> list[str]:
    names = sorted(k[: -len("_requirements")] for k in _settings() if k.endswith("_requirements"))
    return [*(n for n in names if n != "asset"), "all"]


def _build_wheel(tmp: Path) -> Path:
    """A wheel of the files git would commit (a scratch copy, so the build leaves nothing in the tree)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.splitlines()
    src = tmp / "src"
    for name in files:
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    wheels = tmp / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                    str(src)], check=True, capture_output=True, text=True, timeout=300)
    return wheels


def _fresh_venv(tmp: Path) -> Path:
    """A new venv whose dependencies come from this venv's site-packages (linked, without adapt itself), so that
    `pip install --no-index` proves every extra's requirements are met by the tested stack without a download."""
    fresh = tmp / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(fresh)], check=True, timeout=300)
    shared = tmp / "shared"
    shared.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not (entry.name == "adapt" or "adapt_tuner" in entry.name or entry.suffix == ".pth"):
            (shared / entry.name).symlink_to(entry)
    (site,) = fresh.glob("lib/python*/site-packages")
    (site / "zz_tested_stack.pth").write_text(f"{shared}\n")
    return fresh


_UNMET_BY_DESIGN = {  # requirements of the tested stack's own packages that this machine's stack leaves out
    ("fastai", "torchvision"),  # the registry's torchvision is CUDA-linked (scripts/setup.sh removes it); a CPU user
                                # gets the CPU build with torch (README); fastai's text stack does not import it
}

_CHECK = r"""
import importlib.metadata as m, json, sys
from packaging.requirements import Requirement
from packaging.version import Version
wheel = m.distribution("adapt-tuner")
unmet = []
def check(req, extra):
    if req.marker is not None and not req.marker.evaluate({"extra": extra}):
        return
    try:
        have = m.version(req.name)
    except m.PackageNotFoundError:
        unmet.append(f"{req} (not installed)")
        return
    if not req.specifier.contains(Version(have), prereleases=True):
        unmet.append(f"{req} (have {have})")
for extra in [""] + sys.argv[1:]:
    for req in map(Requirement, wheel.requires or []):
        check(req, extra)
print(json.dumps({"file": __import__("adapt").__file__, "version": wheel.version, "unmet": unmet,
                  "extras": wheel.metadata.get_all("Provides-Extra"), "tops": sorted({f.parts[0] for f in wheel.files})}))
"""


def test_readme_install_commands_run_against_the_built_wheel(tmp_path: Path) -> None:
    """The install block as written, in a fresh venv, with `pip` answering from the built wheel and the tested
    stack only (no index): then the wheel's requirements, for the core and every extra, are all met."""
    from .readme_utils import run_shell, section_blocks

    wheels, fresh = _build_wheel(tmp_path), _fresh_venv(tmp_path)
    (wheel,) = wheels.glob("adapt_tuner-*.whl")
    prelude = ('pip() { local a=(); for x in "$@"; do [[ $x == torchvision* ]] || a+=("$x"); done; '
               '"$FRESH/bin/python" -m pip -q "${a[@]}" --no-index --no-deps --find-links "$WHEELS"; }\n'
               'git() { if [ "$1" = clone ]; then command git clone -q "$ADAPT_ROOT" "$(basename "$2")"; '
               'else command git "$@"; fi; }\n'
               'make() { command make -n "$@"; }\n')  # the contributor's `make setup`: CI runs it in a fresh clone
    (block,) = section_blocks("Install", "bash")
    work = tmp_path / "work"
    work.mkdir()
    bare = {"PYTHONPATH": ""}  # the fresh venv sees its own site-packages and the tested stack, not this checkout
    out = run_shell(block, work, {"FRESH": str(fresh), "WHEELS": str(wheels), **bare}, prelude=prelude, timeout=600).stdout
    assert "bash scripts/setup.sh" in out and (work / "adapt-tuner" / "settings.ini").is_file(), out
    done = subprocess.run([str(fresh / "bin" / "python"), "-c", _CHECK, *_extras()], check=True, capture_output=True,
                          text=True, timeout=120, cwd=work, env={**os.environ, **bare})
    got = json.loads(done.stdout)
    assert got["file"].startswith(str(fresh)) and wheel.name.startswith(f"adapt_tuner-{got['version']}-"), got
    assert not got["unmet"], f"requirements of adapt-tuner and its extras the tested stack does not meet: {got['unmet']}"
    assert set(_extras()) <= set(got["extras"]), got["extras"]
    assert "tests" not in got["tops"] and "adapt" in got["tops"], got["tops"]
    check = subprocess.run([str(fresh / "bin" / "python"), "-m", "pip", "check"], capture_output=True, text=True,
                           env={**os.environ, **bare})
    problems = [line for line in check.stdout.splitlines()
                if not any(line.startswith(f"{a} ") and f"requires {b}," in line for a, b in _UNMET_BY_DESIGN)
                and "which is not installed" in line and line.split()[0] in ("adapt-tuner", "fastai", "transformers",
                                                                              "flair", "datasets", "torch")]
    assert not problems, problems
    cli = subprocess.run([str(fresh / "bin" / "adapt"), "--version"], capture_output=True, text=True, timeout=120, cwd=work,
                         env={**os.environ, **bare})
    assert cli.returncode == 0 and got["version"] in cli.stdout, (cli.stdout, cli.stderr)
