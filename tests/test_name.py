"""Our import name, distribution and command differ from the authors' package (`llavaction`)."""

import importlib.metadata
import tomllib
from pathlib import Path

import verbnoun

ROOT = Path(__file__).resolve().parents[1]


def test_import_name_distribution_and_command_are_not_the_authors():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert verbnoun.__name__ == "verbnoun" != "llavaction"
    assert project["name"] == "verbnoun"
    assert list(project["scripts"]) == ["verbnoun"]
    assert Path(verbnoun.__file__).parent.name == "verbnoun"
    # the installed distribution that provides `verbnoun` does not also provide `llavaction`
    top_level = importlib.metadata.packages_distributions()
    assert set(top_level["verbnoun"]) == {"verbnoun"}
    assert "verbnoun" not in top_level.get("llavaction", [])
