"""The package as people install it: its free PyPI name everywhere, the extras table, the tested versions."""
from __future__ import annotations

import re
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
    declared = {"train", "flair", "serve", "ort", "onnx", "dev"}
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
