"""The annotate guide's first example (docs/guides/annotate.md), run as written on the tiny clip."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "annotate.md"


def test_readme_annotate_example_runs_as_written(clip, truth_csv, tmp_path, monkeypatch, capsys):
    from verbnoun.cli import main

    block = re.findall(r"```bash\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)[0]
    shutil.copy(clip, tmp_path / "clip.mp4")
    shutil.copy(truth_csv, tmp_path / "truth.csv")
    monkeypatch.chdir(tmp_path)
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    for line in commands:
        argv = shlex.split(line)
        assert argv[0] == "verbnoun"
        assert main(argv[1:]) == 0, line
    for name in ("segments.csv", "ethogram.png", "summary.json", "timeline.html", "dataset.yaml"):
        assert (tmp_path / "runs" / "clip" / name).is_file()
    assert "majority" in capsys.readouterr().out
