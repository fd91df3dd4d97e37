"""The documentation stays true: every relative link resolves, every "SPEC n" the code cites names
a section of docs/spec.md, the command reference is what the commands themselves say, and the
README stays a front door."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])


def test_the_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move reference into docs/"
    assert "make demo" in "\n".join(lines) and "make test" in "\n".join(lines)


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        assert (page.parent / target).exists(), f"{page.relative_to(ROOT)}: broken link {target}"


def _spec_sections() -> set[str]:
    text = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
    return set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, re.M))


def test_every_spec_citation_names_a_section_of_docs_spec():
    sections = _spec_sections()
    assert {"2", "3", "3.1", "5", "6", "9", "10"} <= sections
    cited: dict[str, str] = {}
    for folder in ("src", "tests", "benchmarks", "configs", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in {".py", ".yaml", ".md", ".json"} or not path.is_file():
                continue
            for number in re.findall(r"SPEC (\d+(?:\.\d+)?)", path.read_text(encoding="utf-8")):
                cited.setdefault(number, str(path.relative_to(ROOT)))
    missing = {n: where for n, where in cited.items() if n not in sections}
    assert not missing, f"SPEC sections cited but not in docs/spec.md: {missing}"


@pytest.mark.slow
def test_the_command_reference_is_generated_from_the_commands(tmp_path):
    out = tmp_path / "cli.md"
    typer = Path(sys.executable).with_name("typer")
    subprocess.run(
        [str(typer), "verbnoun.cli", "utils", "docs", "--name", "verbnoun", "--output", str(out)],
        check=True,
        capture_output=True,
    )
    committed = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    assert out.read_text(encoding="utf-8") == committed, "run `make docs` and commit the result"
