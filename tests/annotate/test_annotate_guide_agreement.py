"""The annotate guide's agreement example (docs/guides/annotate.md), run as written."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "annotate.md"


@pytest.mark.slow
def test_guide_agreement_example_runs_as_written(clip, truth_csv, tmp_path, monkeypatch):
    from pynwb import NWBHDF5IO

    from verbnoun.cli import main

    fence = "`" * 3
    blocks = re.findall(fence + r"bash\n(.*?)" + fence, GUIDE.read_text(encoding="utf-8"), re.S)
    block = next(b for b in blocks if "annotate export" in b)
    shutil.copy(clip, tmp_path / "clip.mp4")
    shutil.copy(truth_csv, tmp_path / "truth.csv")
    (tmp_path / "scored.csv").write_text("video_id,start,stop\nclip,0,4\n")
    monkeypatch.chdir(tmp_path)
    for line in [x for x in block.splitlines() if x.strip()]:
        argv = shlex.split(line)
        assert argv[0] == "verbnoun"
        assert main(argv[1:]) == 0, line
    run = tmp_path / "runs" / "scored"
    for name in ("bouts.csv", "time_bins.png", "agreement.json", "events.tsv"):
        assert (run / name).is_file()
    with NWBHDF5IO(str(run / "bouts.nwb"), "r", load_namespaces=True) as io:
        assert "bouts_clip" in io.read().processing["behavior"].data_interfaces
