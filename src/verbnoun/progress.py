"""Progress of the long commands (demo, train, eval, specialist train, annotate, report).

On a terminal a rich bar shows the count, the last status and the time left. When standard
output is not a terminal (CI, ``nohup``, ``make demo > log``) the same calls print plain lines
instead, with no control characters: one when a stage starts and one when it ends
(:class:`Stages`), and for counted work a line when it starts, a line every ``percent``
percent (5 by default) and at the end, each with the count, the rate and the time left::

    demo [4/8] train model: started (specialist distractors, 800 steps)
    training: started, 800 to do
    training: 40/800 (5%), 6.1/s, elapsed 0:07, ETA 2:05, loss 2.113
    demo [4/8] train model: done in 131.2 s

Off a terminal a log is never silent for long: counted work also prints its line whenever
``every_s`` seconds passed without one, whether or not an item finished in them (a timer
thread watches the clock, so a model stuck on one slow answer still shows its count, rate and
``ETA unknown`` until a rate is known), and a stage (or a :class:`Heartbeat` block, e.g. a model
loading) prints ``still running, elapsed m:ss`` when no line at all came for ``every_s``
seconds. ``every_s`` defaults to :func:`line_seconds`: the environment variable
``VERBNOUN_PROGRESS_SECONDS``, else 30. Lines from every thread are printed whole, one at a
time.

Usage (the eval runner's form; ``advance`` takes a count and an optional status text)::

    with Progress("evaluating", total=len(questions), done=already) as advance:
        advance(len(batch), status="...")
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from verbnoun.errors import VerbnounError

SECONDS_ENV = "VERBNOUN_PROGRESS_SECONDS"
DEFAULT_SECONDS = 30.0

_lock = threading.RLock()  # one plain line at a time, from any thread
_last_output = time.monotonic()  # when the last plain line was printed (any label)


def line_seconds() -> float:
    """The longest silence between plain progress lines: ``VERBNOUN_PROGRESS_SECONDS`` when
    set (a number of seconds above 0), else 30."""
    text = os.environ.get(SECONDS_ENV, "").strip()
    if not text:
        return DEFAULT_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise VerbnounError(
            f"{SECONDS_ENV}={text!r}: give the longest silence between progress lines in "
            "seconds (a number above 0)"
        )
    return value


def interactive(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (default: standard output) is a terminal."""
    stream = stream or sys.stdout
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def clock(seconds: float) -> str:
    """``h:mm:ss`` (or ``m:ss`` under an hour) of a duration in seconds."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _clean(text: str) -> str:
    """One printable line: control characters (escapes, carriage returns) become spaces."""
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _say(text: str, stream: TextIO | None) -> None:
    """Print one plain line whole (flushed) and note when."""
    global _last_output
    with _lock:
        print(_clean(text), file=stream or sys.stdout, flush=True)
        _last_output = time.monotonic()


def quiet_since() -> float:
    """When the last plain line was printed (``time.monotonic``), by any label."""
    return _last_output


class _Ticker:
    """A daemon thread that calls ``tick`` whenever ``every_s`` seconds passed since
    ``since()``; ``tick`` prints (and so moves ``since``) when the line is still due."""

    def __init__(self, every_s: float, since: Callable[[], float], tick: Callable[[], None]):
        self.every_s, self.since, self.tick = every_s, since, tick
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="progress-lines", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            due = self.since() + self.every_s - time.monotonic()
            if due > 0:
                if self.stopped.wait(due):
                    return
                continue
            try:
                self.tick()
            except (OSError, ValueError):  # the stream was closed under us: stop talking
                return
            if self.since() + self.every_s <= time.monotonic() and self.stopped.wait(self.every_s):
                return  # nothing was printed (not due after all): wait a whole interval

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not threading.current_thread():
            self.thread.join(timeout=5)


class Progress:
    """Counted work: a rich bar on a terminal, a plain line every ``percent`` % otherwise, and
    one whenever ``every_s`` seconds passed without a line (default :func:`line_seconds`).

    ``total`` may be ``None`` (unknown): then a line every ``every_s`` seconds. ``done`` is the
    work finished before this start (a resumed run); rate and ETA count only the new work.
    Disabled (``enabled=False``) it prints nothing. Calling the object (or ``advance``)
    records ``n`` more items and an optional status text (e.g. the last loss).
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        done: int = 0,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        percent: float = 5.0,
        every_s: float | None = None,
        tty: bool | None = None,
        status_of: Callable[[], str] | None = None,
    ) -> None:
        every_s = line_seconds() if every_s is None else every_s
        self.label, self.total, self.done, self.start_done = label, total, done, done
        self.enabled, self.stream, self.percent, self.every_s = enabled, stream, percent, every_s
        self.tty = interactive(stream) if tty is None else tty
        self.status = ""
        self.status_of = status_of  # read at every line / refresh, when given
        self.started = self.last_line = time.monotonic()
        self.next_percent = self._next_mark(done)
        self.bar = None
        self.task = None
        self.ticker: _Ticker | None = None
        self.closed = False
        self.printed = done

    def _next_mark(self, done: int) -> float:
        if not self.total:
            return float("inf")
        pct = 100.0 * done / self.total
        return (int(pct // self.percent) + 1) * self.percent

    def __enter__(self) -> Progress:
        self.begin()
        return self

    def __exit__(self, *exc) -> None:
        self.close(failed=exc[0] is not None)

    def begin(self) -> Progress:
        """Start the bar (terminal) or the clock and the timed lines (plain lines); returns
        self."""
        self.started = self.last_line = time.monotonic()
        if self.enabled and self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                ProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress
            from rich.text import Text

            console = Console(file=self.stream) if self.stream is not None else None
            now = self._status

            class Status(ProgressColumn):
                def render(self, task) -> Text:
                    return Text(now())

            self.bar = RichProgress(
                TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                Status(), console=console,
            )  # fmt: skip
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.total, completed=self.done)
        elif self.enabled:
            todo = f", {self.total - self.done} to do" if self.total is not None else ""
            before = f" ({self.done} done before)" if self.done else ""
            _say(f"{self.label}: started{todo}{before}", self.stream)
            if self.every_s > 0:
                self.ticker = _Ticker(self.every_s, lambda: self.last_line, self._tick)
        return self

    def __call__(self, n: int = 1, status: str | None = None) -> None:
        self.advance(n, status)

    def advance(self, n: int = 1, status: str | None = None) -> None:
        """``n`` more items done; ``status``: a short text shown with the count."""
        with _lock:
            self.done += n
            if status is not None:
                self.status = status
            if not self.enabled:
                return
            if self.bar is not None:
                self.bar.update(self.task, advance=n)
                return
            now = time.monotonic()
            pct = 100.0 * self.done / self.total if self.total else 0.0
            if pct >= self.next_percent or (
                not self.total and now - self.last_line >= self.every_s
            ):
                self.next_percent = self._next_mark(self.done)
                self._line()

    def _tick(self) -> None:
        """The timed line, when ``every_s`` seconds passed since the last one."""
        with _lock:
            if not self.closed and time.monotonic() - self.last_line >= self.every_s:
                self._line()

    def _line(self, final: bool = False) -> None:
        elapsed = time.monotonic() - self.started
        new = self.done - self.start_done
        rate = new / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.label}: {self.done}"]
        if self.total:
            parts[0] += f"/{self.total} ({100.0 * self.done / self.total:.0f}%)"
        parts.append(f"{rate:.3g}/s" if rate else "-/s")
        parts.append(f"elapsed {clock(elapsed)}")
        if final:
            parts.append("done")
        elif self.total and rate > 0:
            parts.append(f"ETA {clock((self.total - self.done) / rate)}")
        elif self.total:
            parts.append("ETA unknown")
        if self._status():
            parts.append(self._status())
        _say(", ".join(parts), self.stream)
        self.last_line = time.monotonic()
        self.printed = self.done

    def _status(self) -> str:
        return self.status_of() if self.status_of is not None else self.status

    def close(self, failed: bool = False) -> None:
        """Stop the bar, or print the last line (unless nothing new was done)."""
        if self.closed:
            return
        with _lock:
            self.closed = True
        if self.ticker is not None:
            self.ticker.stop()
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.stop()
        elif self.done != self.printed and not failed:
            with _lock:
                self._line(final=self.total is None or self.done >= self.total)


class Heartbeat:
    """While the block runs off a terminal, ``LABEL: still running, elapsed m:ss`` whenever
    ``every_s`` seconds passed with no plain line from anyone (nothing when the block is
    quick, or when counted work inside it talks). ``text_of``: the line, instead."""

    def __init__(
        self,
        label: str,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        every_s: float | None = None,
        text_of: Callable[[float], str] | None = None,
    ) -> None:
        self.label, self.stream = label, stream
        self.every_s = line_seconds() if every_s is None else every_s
        self.enabled = enabled and self.every_s > 0 and not interactive(stream)
        self.text_of = text_of or (lambda took: f"{label}: still running, elapsed {clock(took)}")
        self.ticker: _Ticker | None = None

    def __enter__(self) -> Heartbeat:
        self.started = time.monotonic()
        if self.enabled:
            self.ticker = _Ticker(self.every_s, quiet_since, self._tick)
        return self

    def _tick(self) -> None:
        with _lock:
            if self.ticker is not None and time.monotonic() - _last_output >= self.every_s:
                _say(self.text_of(time.monotonic() - self.started), self.stream)

    def __exit__(self, *exc) -> None:
        ticker, self.ticker = self.ticker, None
        if ticker is not None:
            ticker.stop()


class Stages:
    """Numbered stages of a command, one plain line when each starts and when it ends, and
    ``still running`` lines off a terminal while a stage is silent (see :class:`Heartbeat`)::

    stages = Stages("demo", ["kitchen", "specialist", ...])
    with stages("kitchen"):
        ...
    """

    def __init__(
        self,
        label: str,
        names: Sequence[str],
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        every_s: float | None = None,
    ) -> None:
        self.label, self.names, self.enabled, self.stream = label, list(names), enabled, stream
        self.every_s = line_seconds() if every_s is None else every_s
        self.times: dict[str, float] = {}

    def __call__(self, name: str, note: str = "") -> _Stage:
        return _Stage(self, name, note)

    def say(self, text: str) -> None:
        """Print one plain line (when enabled)."""
        if self.enabled:
            _say(text, self.stream)

    def prefix(self, name: str) -> str:
        number = self.names.index(name) + 1 if name in self.names else "?"
        return f"{self.label} [{number}/{len(self.names)}] {name}"


class _Stage:
    def __init__(self, stages: Stages, name: str, note: str) -> None:
        self.stages, self.name, self.note = stages, name, note

    def __enter__(self) -> _Stage:
        self.started = time.monotonic()
        note = f" ({self.note})" if self.note else ""
        prefix = self.stages.prefix(self.name)
        self.stages.say(f"{prefix}: started{note}")
        self.beat = Heartbeat(
            prefix, enabled=self.stages.enabled, stream=self.stages.stream,
            every_s=self.stages.every_s,
        ).__enter__()  # fmt: skip
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.beat.__exit__(kind, value, traceback)
        took = time.monotonic() - self.started
        self.stages.times[self.name] = took
        outcome = "failed" if kind is not None else "done"
        self.stages.say(f"{self.stages.prefix(self.name)}: {outcome} in {took:.1f} s")
