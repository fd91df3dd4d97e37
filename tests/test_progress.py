"""Progress of long commands without a terminal: plain lines (stages, every few percent with rate
and ETA, and every interval when nothing finishes), no control characters; the eval command run
with its output piped."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from itertools import pairwise

import pytest

from timed_lines import TimedLines
from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
from verbnoun.errors import VerbnounError
from verbnoun.progress import SECONDS_ENV, Heartbeat, Progress, Stages, clock, line_seconds

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


@pytest.mark.slow
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


@pytest.mark.slow
def test_counted_work_that_stalls_still_prints_a_line_every_interval():
    out = TimedLines()
    with Progress("evaluating", 4, stream=out, every_s=0.2) as advance:
        time.sleep(0.7)  # nothing finishes: lines with the count, no rate, no time left yet
        advance(1)  # 25%: the percent line
        time.sleep(0.7)  # then lines with the rate and the time left
    texts = out.texts()
    assert texts[0] == "evaluating: started, 4 to do"
    waiting = [x for x in texts if x.startswith("evaluating: 0/4 (0%)")]
    assert len(waiting) >= 2
    assert all(re.fullmatch(r"evaluating: 0/4 \(0%\), -/s, elapsed 0:0\d, ETA unknown", x)
               for x in waiting)  # fmt: skip
    after = [x for x in texts if x.startswith("evaluating: 1/4 (25%)")]
    assert len(after) >= 3  # the percent line and the timed ones
    assert all(re.fullmatch(r"evaluating: 1/4 \(25%\), [\d.]+/s, elapsed 0:0\d, ETA 0:0\d", x)
               for x in after)  # fmt: skip
    times = [t for t, _ in out.lines]
    assert max(b - a for a, b in pairwise(times)) < 0.6  # never the whole 0.7 s stall
    time.sleep(0.3)
    assert len(out.lines) == len(texts)  # closed: the timer thread is gone


@pytest.mark.slow
def test_a_silent_stage_says_it_is_still_running_and_a_talking_one_does_not():
    out = TimedLines()
    stages = Stages("demo", ["render", "train"], stream=out, every_s=0.3)
    with stages("render"):
        time.sleep(1.0)
    with stages("train"), Progress("training", 30, stream=out, every_s=0.3, percent=1) as step:
        for _ in range(30):
            time.sleep(0.025)
            step(1)
    texts = out.texts()
    still = [x for x in texts if "still running" in x]
    assert len(still) >= 2
    assert all(re.fullmatch(r"demo \[1/2\] render: still running, elapsed 0:0\d", x)
               for x in still)  # fmt: skip
    assert texts.index(still[0]) > texts.index("demo [1/2] render: started")
    assert re.fullmatch(r"demo \[2/2\] train: done in \d\.\d s", texts[-1])


def test_heartbeat_is_quiet_on_a_terminal_and_for_quick_blocks():
    out = TimedLines()
    with Heartbeat("loading", stream=out, every_s=0.1):
        pass  # quick: nothing
    out.isatty = lambda: True  # a terminal: the bar and the stage lines say enough
    with Heartbeat("loading", stream=out, every_s=0.1):
        time.sleep(0.35)
    assert out.lines == []


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(SECONDS_ENV, "0.25")
    assert line_seconds() == 0.25 and Progress("x", 1).every_s == 0.25
    monkeypatch.delenv(SECONDS_ENV)
    assert line_seconds() == 30.0
    for bad in ("soon", "0", "-1", "inf"):
        monkeypatch.setenv(SECONDS_ENV, bad)
        with pytest.raises(VerbnounError, match=f"{SECONDS_ENV}='{bad}'"):
            line_seconds()


def test_a_bad_interval_is_one_line_from_the_cli(tmp_path, monkeypatch, capsys):
    from verbnoun.cli import main

    annotations = write_kitchen_annotations(tmp_path / "a", kitchen_script(12, 2))
    questions = tmp_path / "q.jsonl"
    build_benchmark(annotations, questions, BuildSettings(distractors="random"))
    monkeypatch.setenv(SECONDS_ENV, "soon")
    code = main(["eval", "--questions", str(questions), "--model", "random",
                 "--out", str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and SECONDS_ENV in err
