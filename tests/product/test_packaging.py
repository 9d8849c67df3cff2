"""The project's own files agree with each other: one source of dependencies, one test command."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_environment_yml_installs_the_pip_package_and_nothing_else():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert pip_sections == [["-e .[test]"]], "environment.yml must install the package via pip, as the Makefile does"
    conda_only = {re.split(r"[=<>]", d)[0] for d in deps if isinstance(d, str)}
    assert conda_only == {"python", "pip"}, f"dependencies belong in pyproject.toml, not conda: {conda_only}"
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet -e '.[test]'" in makefile


def test_torch_is_pinned_to_the_cpu_wheel_on_disk():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch = [d for d in project["dependencies"] if d.startswith("torch")]
    assert torch == ["torch==2.13.0"]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci_lines = [l.strip() for l in (ROOT / ".ci" / "run").read_text().splitlines()
                if l.strip() and not l.strip().startswith("#")]
    assert ci_lines[-1] == "make test"
    assert "\n    make test\n" in readme or "```\nmake test\n```" in readme
