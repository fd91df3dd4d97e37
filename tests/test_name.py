"""The wheel a user installs: our import name, distribution and command differ from the authors'
package (`llavaction`), and the wheel carries what the package needs at run time."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True, capture_output=True, cwd=out,
    )  # fmt: skip
    (path,) = out.glob("verbnoun-*.whl")
    return zipfile.ZipFile(path)


@pytest.mark.slow
def test_the_wheel_installs_verbnoun_only_with_one_command(wheel):
    names = wheel.namelist()
    top_level = {name.split("/")[0] for name in names if not name.startswith("verbnoun-")}
    assert top_level == {"verbnoun"}, top_level
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "[console_scripts]\nverbnoun = verbnoun.cli:main" in text
    assert "llavaction = verbnoun.integrations.lmms_eval.models:manifests" in text
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    assert "\nName: verbnoun\n" in wheel.read(metadata).decode()


@pytest.mark.slow
def test_the_wheel_carries_every_module_and_the_package_data(wheel):
    names = set(wheel.namelist())
    source = ROOT / "src"
    for module in (source / "verbnoun").rglob("*.py"):
        assert str(module.relative_to(source)) in names, module
    assert "verbnoun/py.typed" in names
    assets = source / "verbnoun" / "assets"
    for data in (p for p in assets.rglob("*") if p.is_file()) if assets.is_dir() else ():
        assert str(data.relative_to(source)) in names, f"{data} is not in the wheel"
