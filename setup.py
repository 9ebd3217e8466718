"""Packaging for adapt: all metadata comes from settings.ini."""
from configparser import ConfigParser
from pathlib import Path

from setuptools import find_packages, setup

cfg = ConfigParser(delimiters=["="])
cfg.read(Path(__file__).parent / "settings.ini", encoding="utf-8")
c = cfg["DEFAULT"]


def reqs(key: str) -> list[str]:
    """Split a space-separated requirement list from settings.ini."""
    return c.get(key, "").split()


extras = {
    "train": reqs("train_requirements"),
    "flair": reqs("flair_requirements"),
    "serve": reqs("serve_requirements"),
    "ort": reqs("ort_requirements"),
    "onnx": reqs("onnx_requirements"),
    "peft": reqs("peft_requirements"),
    "search": reqs("search_requirements"),
}
extras["all"] = sorted({r for v in extras.values() for r in v})
extras["dev"] = extras["all"] + reqs("dev_requirements")

readme = Path(__file__).parent / "README.md"
git_url = f"https://github.com/{c['user']}/{c['repo']}"
setup(
    name=c["lib_name"],
    version=c["version"],
    description=c["description"],
    long_description=readme.read_text(encoding="utf-8") if readme.exists() else c["description"],
    long_description_content_type="text/markdown",
    author=c["author"],
    author_email=c["author_email"],
    license="Apache-2.0",
    url=git_url,
    project_urls={"Source": git_url, "Issues": f"{git_url}/issues", "Documentation": f"{git_url}#readme"},
    keywords=c["keywords"],
    python_requires=f">={c['min_python']}",
    packages=find_packages(include=["adapt", "adapt.*"]),
    include_package_data=True,
    install_requires=reqs("requirements"),
    extras_require=extras,
    entry_points={"console_scripts": [s for s in c.get("console_scripts", "").split() if s]},
    classifiers=[
        "Programming Language :: Python :: 3",
        *(f"Programming Language :: Python :: {v}" for v in c["tested_python"].split()),
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
