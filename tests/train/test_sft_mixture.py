"""Mixture files (SPEC 5): sampling strategies, seeding, path resolution, errors."""

from __future__ import annotations

import json

import pytest
import yaml

from verbnoun.errors import VerbnounError
from verbnoun.train.sft import add_to_mixture, load_mixture


def write_task(path, name, n):
    rows = [{"id": f"{name}:{i}", "conversations": [{"from": "human", "value": "q"},
            {"from": "gpt", "value": str(i)}]} for i in range(n)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def mixture(tmp_path, entries):
    path = tmp_path / "mix" / "mixture.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"datasets": entries}))
    return path


@pytest.fixture
def data(tmp_path):
    (tmp_path / "mix").mkdir()
    write_task(tmp_path / "mix" / "a.jsonl", "a", 10)
    write_task(tmp_path / "b.jsonl", "b", 7)
    return tmp_path


def ids(records):
    return [r["id"] for r in records]


def test_first_end_all_and_percent(data):
    path = mixture(data, [
        {"json_path": "a.jsonl", "sampling_strategy": "first:3"},
        {"json_path": "../b.jsonl", "sampling_strategy": "end:2"},
        {"json_path": "a.jsonl", "sampling_strategy": "first:25%"},  # ceil(2.5) = 3
        {"json_path": str(data / "b.jsonl"), "sampling_strategy": "all"},
        {"json_path": "a.jsonl", "sampling_strategy": "first:50"},  # past the end: all of it
    ])  # fmt: skip
    got = ids(load_mixture(path, seed=0))
    assert got == (["a:0", "a:1", "a:2", "b:5", "b:6", "a:0", "a:1", "a:2"]
                   + [f"b:{i}" for i in range(7)] + [f"a:{i}" for i in range(10)])  # fmt: skip


def test_random_is_seeded_and_without_replacement(data):
    path = mixture(data, [{"json_path": "a.jsonl", "sampling_strategy": "random:6"}])
    first, again = ids(load_mixture(path, seed=1)), ids(load_mixture(path, seed=1))
    assert first == again and len(set(first)) == 6
    assert set(first) <= {f"a:{i}" for i in range(10)}
    draws = {tuple(ids(load_mixture(path, seed=s))) for s in range(8)}
    assert len(draws) > 4  # the seed changes the draw
    percent = mixture(data, [{"json_path": "a.jsonl", "sampling_strategy": "random:30%"}])
    assert len(load_mixture(percent, seed=0)) == 3


def test_add_to_mixture_appends_without_duplicates(data):
    path = data / "mix" / "new.yaml"
    add_to_mixture(path, ["a.jsonl"])
    add_to_mixture(path, ["a.jsonl", "../b.jsonl"])
    assert yaml.safe_load(path.read_text()) == {"datasets": [
        {"json_path": "a.jsonl", "sampling_strategy": "all"},
        {"json_path": "../b.jsonl", "sampling_strategy": "all"},
    ]}  # fmt: skip
    assert len(load_mixture(path)) == 17


@pytest.mark.parametrize(
    ("strategy", "message"),
    [("random", "bad sampling_strategy"), ("top:3", "bad sampling_strategy"),
     ("first:x", "bad amount"), ("first:120%", "bad amount")],
)  # fmt: skip
def test_bad_strategies_are_refused(data, strategy, message):
    path = mixture(data, [{"json_path": "a.jsonl", "sampling_strategy": strategy}])
    with pytest.raises(VerbnounError, match=rf"mixture\.yaml: datasets\[0\]: {message}"):
        load_mixture(path)


def test_bad_files_name_the_file_and_line(data):
    with pytest.raises(VerbnounError, match=r"missing\.jsonl: SFT data file not found"):
        load_mixture(mixture(data, [{"json_path": "missing.jsonl"}]))
    (data / "mix" / "bad.jsonl").write_text('{"id": 1, "conversations": []}\n{oops\n')
    with pytest.raises(VerbnounError, match=r"bad\.jsonl:2: not valid JSON"):
        load_mixture(mixture(data, [{"json_path": "bad.jsonl"}]))
    with pytest.raises(VerbnounError, match="expected 'datasets"):
        load_mixture(mixture(data, []))
