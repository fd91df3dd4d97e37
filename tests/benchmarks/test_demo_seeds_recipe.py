"""``bench_demo_seeds.py`` refuses to mix recipes in one folder, and reads seeds run before a
recipe field existed as what they did (the release's pool of 2K, no extra validation videos)."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict, replace

from benchresults import BENCHMARKS

from verbnoun.demo import DemoRecipe


def _bench():
    spec = importlib.util.spec_from_file_location(
        "bench_demo_seeds", BENCHMARKS / "bench_demo_seeds.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def write_summary(folder, recipe: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps({"recipe": recipe}))


def test_same_recipe_and_seeds_run_before_a_field_existed(tmp_path):
    same_recipe = _bench().same_recipe
    assert same_recipe(tmp_path / "empty", 0, DemoRecipe())  # nothing there yet
    now = DemoRecipe()
    write_summary(tmp_path / "now", {**asdict(now), "seed": 3})
    assert same_recipe(tmp_path / "now", 3, now)
    assert not same_recipe(tmp_path / "now", 4, now)
    assert not same_recipe(tmp_path / "now", 3, replace(now, steps=now.steps + 1))
    # a seed of the recipe before specialist_pool and validation_videos were fields
    old = {
        k: v for k, v in asdict(now).items() if k not in ("specialist_pool", "validation_videos")
    }
    write_summary(tmp_path / "old", {**old, "seed": 0})
    assert not same_recipe(tmp_path / "old", 0, now)  # today's pool of 5 is another recipe
    assert same_recipe(tmp_path / "old", 0, replace(now, specialist_pool=0, validation_videos=0))
