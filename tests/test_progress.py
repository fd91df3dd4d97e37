"""Progress of long commands without a terminal: plain lines (stages, every few percent with rate
and ETA), no control characters; the eval command run with its output piped."""

from __future__ import annotations

import io
import re
import subprocess
import sys

from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
from verbnoun.progress import Progress, Stages, clock

CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")  # anything but the newline


def test_counted_work_prints_a_line_every_few_percent_with_rate_and_eta():
    out = io.StringIO()
    with Progress("training", 200, done=20, stream=out, percent=10) as advance:
        for step in range(180):
            advance(1, f"loss {1 / (step + 1):.3f}")
    first, *lines = out.getvalue().splitlines()
    assert first == "training: started, 180 to do (20 done before)"
    assert not CONTROL.search(out.getvalue())
    # resumed at 10%: a line at 20%, 30%, ..., 100%
    assert [re.match(r"training: (\d+)/200 \((\d+)%\)", x).group(2) for x in lines] == [
        str(p) for p in range(20, 101, 10)
    ]
    assert all(re.search(r", [\d.e+-]+/s, elapsed \d+:\d\d, ", x) for x in lines)
    assert "ETA" in lines[0] and lines[-1].endswith("loss 0.006")


def test_disabled_and_terminal_modes_print_no_plain_lines():
    out = io.StringIO()
    with Progress("x", 10, enabled=False, stream=out) as advance:
        advance(10)
    assert out.getvalue() == ""
    calls = []
    with Progress("x", None, stream=out, every_s=0.0, status_of=lambda: "s") as advance:
        advance(3)  # unknown total: a line per interval, with the status read each time
        calls.append(out.getvalue())
    assert calls[0].startswith("x: started\nx: 3, ") and calls[0].rstrip().endswith("s")


def test_stage_lines_and_clock():
    out = io.StringIO()
    stages = Stages("demo", ["kitchen", "train"], stream=out)
    with stages("kitchen", "40 videos"):
        pass
    try:
        with stages("train"):
            raise ValueError("boom")
    except ValueError:
        pass
    lines = out.getvalue().splitlines()
    assert lines[0] == "demo [1/2] kitchen: started (40 videos)"
    assert re.fullmatch(r"demo \[1/2\] kitchen: done in \d+\.\d s", lines[1])
    assert re.fullmatch(r"demo \[2/2\] train: failed in \d+\.\d s", lines[3])
    assert clock(59.6) == "1:00" and clock(3725) == "1:02:05"


def test_eval_without_a_terminal_prints_plain_progress_lines(tmp_path):
    annotations = write_kitchen_annotations(tmp_path / "a", kitchen_script(12, 2))
    questions = tmp_path / "q.jsonl"
    build_benchmark(annotations, questions, BuildSettings(distractors="random"))
    code = (
        "import sys; from verbnoun.cli import main; "
        f"sys.exit(main(['eval', '--questions', {str(questions)!r}, '--model', 'random', "
        f"'--out', {str(tmp_path / 'run')!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert not CONTROL.search(result.stdout + result.stderr)
    first, *lines = [x for x in result.stdout.splitlines() if x.startswith("evaluating: ")]
    assert re.fullmatch(r"evaluating: started, \d+ to do", first)
    assert len(lines) >= 3 and "(100%)" in lines[-1]
    assert all(re.search(r"\d+/\d+ \(\d+%\), [\d.e+-]+/s, elapsed ", x) for x in lines)
