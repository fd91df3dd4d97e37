"""The bout table of ``annotate`` and its exports, read back by the tools' own libraries: NWB
with the ndx-ethogram extension through pynwb, BORIS's tabular events through pandas; time bins
in summary.json against the clip's known bouts."""

from __future__ import annotations

import csv
import json

import pytest
from annotate_clip import BEHAVIOURS

from verbnoun.cli import main

ORACLE = ["--actions", BEHAVIOURS, "--model", "oracle", "--window", "0.0333334",
          "--stride", "0.0333334", "--smoothing", "none"]  # fmt: skip
# the clip's truth (conftest): groom 0.5-1.5 s, rear 2-4 s, walk 4.5-5.5 s, 30 fps, 6 s
BOUTS = [("groom", 15, 45), ("rear", 60, 120), ("walk", 135, 165)]
BORIS_HEADER = [
    "Observation id", "Observation date", "Description", "Observation duration",
    "Observation type", "Source", "Time offset (s)", "Media duration (s)", "FPS", "Subject",
    "Behavior", "Behavioral category", "Behavior type", "Time", "Media file name", "Image index",
    "Image file path", "Comment",
]  # fmt: skip


@pytest.fixture(scope="module")
def run(clip, truth_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("bouts") / "run"
    code = main(["annotate", "--video", str(clip), "--out", str(out), "--truth", str(truth_csv),
                 "--bin", "1.5s", *ORACLE])  # fmt: skip
    assert code == 0
    return out


def test_bout_table(run):
    rows = list(csv.DictReader((run / "bouts.csv").open()))
    assert list(rows[0]) == ["bout", "video_id", "behaviour", "label", "start_s", "stop_s",
                             "start_frame", "stop_frame", "duration_s", "fps",
                             "mean_confidence"]  # fmt: skip
    got = [(r["behaviour"], int(r["start_frame"]), int(r["stop_frame"])) for r in rows]
    assert got == BOUTS
    rear = rows[1]
    assert (float(rear["start_s"]), float(rear["stop_s"]), float(rear["duration_s"])) == (2, 4, 2)
    assert rear["video_id"] == "clip" and rear["fps"] == "30"
    assert float(rear["mean_confidence"]) == pytest.approx(1.0, abs=1e-3)  # the oracle is sure


def test_nwb_round_trip(run, tmp_path, capsys):
    from pynwb import NWBHDF5IO

    path = tmp_path / "bouts.nwb"
    assert main(["annotate", "export", str(run), "--nwb", str(path),
                 "--session-start", "2024-05-01T09:30:00"]) == 0  # fmt: skip
    assert f"wrote {path}" in capsys.readouterr().out
    with NWBHDF5IO(str(path), "r", load_namespaces=True) as io:
        nwb = io.read()
        assert nwb.session_start_time.isoformat() == "2024-05-01T09:30:00+00:00"
        behavior = nwb.processing["behavior"]
        table = behavior["bouts_clip"]
        assert type(table).__name__ == "EthogramBouts"
        assert table.labeling_method == "automated"
        assert json.loads(table.parameters)["model"] == "oracle"
        frame = table.to_dataframe()
        assert list(frame["label"]) == [b for b, _, _ in BOUTS]
        assert list(frame["start_time"]) == pytest.approx([0.5, 2.0, 4.5])
        assert list(frame["stop_time"]) == pytest.approx([1.5, 4.0, 5.5])
        assert list(frame["start_frame"]) == [15, 60, 135]
        assert list(frame["confidence"]) == pytest.approx([1.0] * 3, abs=1e-3)
        ethogram = behavior["ethogram"].to_dataframe()
        assert list(ethogram["behavior"]) == ["groom", "rear", "walk"]
        assert table.ethogram.name == "ethogram"


def test_boris_round_trip(run, tmp_path):
    import pandas as pd

    path = tmp_path / "events.tsv"
    assert main(["annotate", "export", str(run), "--boris", str(path)]) == 0
    events = pd.read_csv(path, sep="\t", keep_default_na=False)
    assert list(events.columns) == BORIS_HEADER
    assert list(zip(events["Behavior"], events["Behavior type"], events["Time"], strict=True)) == [
        ("groom", "START", 0.5), ("groom", "STOP", 1.5), ("rear", "START", 2.0),
        ("rear", "STOP", 4.0), ("walk", "START", 4.5), ("walk", "STOP", 5.5),
    ]  # fmt: skip
    assert set(events["Observation id"]) == {"clip"}
    assert set(events["Observation type"]) == {"Media file(s)"}
    assert list(events["Image index"]) == [15, 45, 60, 120, 135, 165]
    assert set(events["Media duration (s)"]) == {6.0} and set(events["FPS"]) == {30.0}
    as_csv = tmp_path / "events.csv"
    assert main(["annotate", "export", str(run), "--boris", str(as_csv),
                 "--session-start", events["Observation date"][0].replace(" ", "T")]) == 0  # fmt: skip
    pd.testing.assert_frame_equal(pd.read_csv(as_csv, keep_default_na=False), events)


def test_export_reads_hand_corrections(run, tmp_path):
    """segments.csv corrected by hand (a bout removed) is what the export writes."""
    import shutil

    import pandas as pd

    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("thumbs"))
    lines = (copy / "segments.csv").read_text().splitlines(keepends=True)
    (copy / "segments.csv").write_text("".join(lines[:2] + lines[3:]))  # drop rear
    path = tmp_path / "events.tsv"
    assert main(["annotate", "export", str(copy), "--boris", str(path)]) == 0
    assert list(pd.read_csv(path, sep="\t")["Behavior"]) == ["groom", "groom", "walk", "walk"]


def test_time_bins(run):
    """1.5 s bins of the 6 s clip: rear (2-4 s) is split between bins 1 and 2, counted once,
    in bin 1 where it starts; transitions land where their second bout starts."""
    bins = json.loads((run / "summary.json").read_text())["bins"]
    assert bins["bin_seconds"] == 1.5 and bins["behaviours"] == ["groom", "rear", "walk"]
    overall = bins["overall"]
    assert [(b["start_s"], b["stop_s"]) for b in overall] == [(0, 1.5), (1.5, 3), (3, 4.5),
                                                              (4.5, 6)]  # fmt: skip
    budget = [{n: v["seconds"] for n, v in b["time_budget"].items()} for b in overall]
    assert budget == [
        {"groom": 1.0, "rear": 0.0, "walk": 0.0, "(no behaviour)": 0.5},
        {"groom": 0.0, "rear": 1.0, "walk": 0.0, "(no behaviour)": 0.5},
        {"groom": 0.0, "rear": 1.0, "walk": 0.0, "(no behaviour)": 0.5},
        {"groom": 0.0, "rear": 0.0, "walk": 1.0, "(no behaviour)": 0.5},
    ]
    assert [b["bouts"]["rear"] for b in overall] == [
        {"count": 0, "mean_seconds": None}, {"count": 1, "mean_seconds": 2.0},
        {"count": 0, "mean_seconds": None}, {"count": 0, "mean_seconds": None},
    ]  # fmt: skip
    assert [b["transitions"] for b in overall] == [
        [[0, 0, 0], [0, 0, 0], [0, 0, 0]], [[0, 1, 0], [0, 0, 0], [0, 0, 0]],
        [[0, 0, 0], [0, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 1], [0, 0, 0]],
    ]  # fmt: skip
    assert bins["videos"]["clip"] == overall  # one video: its bins are the overall ones
    assert (run / "time_bins.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_time_bins_pool_videos():
    """Bin k of every video is added; a shorter video has fewer bins."""
    from verbnoun.annotate.bins import binned_summary
    from verbnoun.annotate.bouts import Bout, VideoFacts

    facts = {"a": VideoFacts("a", 10, 100), "b": VideoFacts("b", 10, 50)}
    bouts = [Bout("a_0", "a", "eat", "0", 0, 30, 10, None),
             Bout("a_1", "a", "rest", "1", 30, 100, 10, None),
             Bout("b_0", "b", "eat", "0", 10, 20, 10, None)]  # fmt: skip
    bins = binned_summary(bouts, facts, 5.0, ["rest", "eat"])
    assert bins["behaviours"] == ["rest", "eat"]
    first, second = bins["overall"]
    assert first["seconds"] == 10.0 and second["seconds"] == 5.0
    assert first["time_budget"]["eat"] == {"seconds": 4.0, "fraction": 0.4}
    assert first["time_budget"]["rest"]["seconds"] == 2.0
    assert first["bouts"]["eat"] == {"count": 2, "mean_seconds": 2.0}
    assert second["time_budget"]["rest"] == {"seconds": 5.0, "fraction": 1.0}
    assert first["transitions"] == [[0, 0], [1, 0]]  # eat -> rest, in a's first bin
    assert len(bins["videos"]["b"]) == 1


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5min", 300), ("5m", 300), ("1h", 3600), ("1.5h", 5400), ("90", 90),
     (" 2 min ", 120), (".5s", 0.5)],
)  # fmt: skip
def test_durations(text, seconds):
    from verbnoun.annotate.bins import parse_duration

    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 parsecs", "", "-1s", "0s", "min", "1h30"])
def test_bad_durations_are_one_line_errors(text, clip, tmp_path, capsys):
    code = main(["annotate", "--video", str(clip), "--out", str(tmp_path / "r"), "--bin", text,
                 "--actions", BEHAVIOURS, "--model", "random"])  # fmt: skip
    captured = capsys.readouterr()
    lines = [x for x in (captured.out + captured.err).splitlines() if x.startswith("verbnoun:")]
    assert code != 0 and "Traceback" not in captured.err
    assert len(lines) == 1 and f"--bin {text!r}" in lines[0], lines
    assert not (tmp_path / "r").exists()  # refused before any work


def test_export_needs_a_finished_run(tmp_path, capsys):
    assert main(["annotate", "export", str(tmp_path), "--boris", str(tmp_path / "x.tsv")]) == 1
    assert "no segments.csv" in capsys.readouterr().err
    assert main(["annotate", "export", str(tmp_path)]) == 1
    assert "nothing to export" in capsys.readouterr().err


def test_export_of_a_video_without_bouts(run, tmp_path):
    """Every video gets its table, also one where nothing was found (typed, empty columns)."""
    import shutil

    import pandas as pd
    from pynwb import NWBHDF5IO

    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("thumbs"))
    header = (copy / "segments.csv").read_text().splitlines(keepends=True)[0]
    (copy / "segments.csv").write_text(header)
    nwb, boris = tmp_path / "none.nwb", tmp_path / "none.tsv"
    assert main(["annotate", "export", str(copy), "--nwb", str(nwb), "--boris", str(boris)]) == 0
    with NWBHDF5IO(str(nwb), "r", load_namespaces=True) as io:
        frame = io.read().processing["behavior"]["bouts_clip"].to_dataframe()
        assert len(frame) == 0 and {"start_frame", "confidence"} <= set(frame.columns)
    assert list(pd.read_csv(boris, sep="\t").columns) == BORIS_HEADER
