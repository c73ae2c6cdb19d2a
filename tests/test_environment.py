"""environment.yml and pyproject.toml must describe the same environment."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r): r.replace(" ", "") for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {}
    for requirement in conda + pip:
        if requirement.startswith(("python", "pip", "-e", "--")):
            continue
        listed[_name(requirement)] = requirement.replace(" ", "")
    assert listed == wanted
    assert any(r.startswith("python=3.11") for r in conda)
    assert "-e ." in pip, "environment.yml installs the course package itself"
