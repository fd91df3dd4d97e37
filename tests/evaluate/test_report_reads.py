"""``verbnoun report`` and ``score`` read each question file once, however many runs share it:
the question reader and the hash are counted per file; a file rewritten on disk is read again
(and, changed, refused as before)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.cli import main
from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
from verbnoun.evaluate import score


@pytest.fixture
def runs(tmp_path):
    """Three random runs on one question file and two on another."""
    annotations = write_kitchen_annotations(tmp_path / "a", kitchen_script(12, 2))
    files = {}
    for name, distractors in (("random", "random"), ("hard", "prior-hard")):
        files[name] = tmp_path / f"{name}.jsonl"
        build_benchmark(annotations, files[name], BuildSettings(distractors=distractors))
    made = []
    for name, seeds in (("random", (0, 1, 2)), ("hard", (0, 1))):
        for seed in seeds:
            out = tmp_path / "runs" / f"{name}-{seed}"
            assert main(["eval", "--questions", str(files[name]), "--model", "random",
                         "--seed", str(seed), "--out", str(out), "--no-progress"]) == 0  # fmt: skip
            made.append(out)
    return files, made


@pytest.fixture
def counted(monkeypatch):
    """Reads and hashes of question files by ``score`` (its cache emptied first)."""
    reads: Counter = Counter()
    hashes: Counter = Counter()
    read, digest = score.read_questions, score.sha256_file

    def counting_read(path):
        reads[Path(path).name] += 1
        return read(path)

    def counting_digest(path):
        hashes[Path(path).name] += 1
        return digest(path)

    score.QUESTION_FILES.clear()
    monkeypatch.setattr(score, "read_questions", counting_read)
    monkeypatch.setattr(score, "sha256_file", counting_digest)
    yield reads, hashes
    score.QUESTION_FILES.clear()


@pytest.mark.slow
def test_report_reads_each_question_file_once(runs, counted, tmp_path, capsys):
    files, made = runs
    reads, hashes = counted
    page = tmp_path / "report.html"
    assert main(["report", *map(str, made), "--out", str(page)]) == 0
    assert reads == {"random.jsonl": 1, "hard.jsonl": 1}
    assert hashes == {"random.jsonl": 1, "hard.jsonl": 1}
    # each run still holds all its questions, and its own list of them
    loaded = [score.load_run(run) for run in made]
    assert [len(r.questions) for r in loaded[:3]] == [len(loaded[0].questions)] * 3
    assert loaded[0].questions is not loaded[1].questions
    assert reads == {"random.jsonl": 1, "hard.jsonl": 1}  # the same process: still once

    # rewritten on disk (same content, new modification time): read again, once
    text = files["random"].read_bytes()
    files["random"].write_bytes(text)
    stat = files["random"].stat()
    os.utime(files["random"], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    capsys.readouterr()
    assert main(["score", *map(str, made), "--json"]) == 0
    assert reads == {"random.jsonl": 2, "hard.jsonl": 1}

    # changed: refused in one line, as before the cache
    files["random"].write_bytes(text + b"\n")  # a blank line: the same questions, another hash
    assert main(["report", *map(str, made), "--out", str(page)]) == 1
    err = capsys.readouterr().err
    assert "changed since the run" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_without_the_cache_every_run_reads_its_file(runs, counted, tmp_path, monkeypatch):
    """The old path (``benchmarks/bench_report.py`` times it beside the new one)."""
    _, made = runs
    reads, _ = counted
    monkeypatch.setattr(score.QUESTION_FILES, "enabled", False)
    assert main(["report", *map(str, made), "--out", str(tmp_path / "report.html")]) == 0
    assert reads == {"random.jsonl": 3, "hard.jsonl": 2}
