"""A stream (not a terminal) that notes when each line arrived: the progress tests read it."""

from __future__ import annotations

import io
import time


class TimedLines(io.StringIO):
    """A stream (not a terminal) that notes when each line arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[float, str]] = []
        self.partial = ""

    def write(self, text: str) -> int:
        self.partial += text
        while "\n" in self.partial:
            line, self.partial = self.partial.split("\n", 1)
            self.lines.append((time.monotonic(), line))
        return len(text)

    def texts(self) -> list[str]:
        return [text for _, text in self.lines]
