"""EK100 tables: real files parse; every malformed input gives an error naming file, line, field."""

from __future__ import annotations

import pytest

from verbnoun.data.ek100 import parse_timestamp, read_classes, read_segments
from verbnoun.errors import AnnotationError

HEADER = (
    "narration_id,participant_id,video_id,narration_timestamp,start_timestamp,stop_timestamp,"
    "start_frame,stop_frame,narration,verb,verb_class,noun,noun_class,all_nouns,all_noun_classes"
)
GOOD = "P01_11_0,P01,P01_11,00:00:00.560,00:00:00.00,00:00:01.89,1,113,take plate,take,0,plate,2,['plate'],[2]"


def test_parse_timestamp():
    assert parse_timestamp("00:00:01.89") == pytest.approx(1.89)
    assert parse_timestamp("01:02:03.5") == pytest.approx(3723.5)
    assert parse_timestamp("00:10:00") == 600.0
    for bad in ("1.5", "00:61:00.00", "aa:00:00.00", "00:00:1.00", ""):
        with pytest.raises(ValueError):
            parse_timestamp(bad)


@pytest.mark.slow
def test_real_validation_and_classes(ek100_dir):
    verbs = read_classes(ek100_dir / "EPIC_100_verb_classes.csv", "verb")
    nouns = read_classes(ek100_dir / "EPIC_100_noun_classes.csv", "noun")
    assert (len(verbs), len(nouns)) == (97, 300)
    assert len(read_classes(ek100_dir / "EPIC_100_noun_classes_v2.csv", "noun")) == 305
    assert verbs.display(verbs.keys.index("turn-on")) == "turn-on"
    assert nouns.display(nouns.keys.index("pan:dust")) == "dust pan"
    assert nouns.display(nouns.keys.index("machine:sous:vide")) == "vide sous machine"
    assert "spoon:wooden" in nouns.instances[1]
    segments = read_segments(ek100_dir / "EPIC_100_validation.csv", verbs=verbs, nouns=nouns)
    assert len(segments) == 9668
    first = segments[0]
    assert (first.narration_id, first.row, first.line, first.action_id) == ("P01_11_0", 0, 2, "0:2")
    assert first.stop == pytest.approx(1.89) and first.narration == "take plate"
    assert len({s.video_id for s in segments}) == 138
    assert len({s.action_id for s in segments}) == 1352


def test_real_test_timestamps_are_unlabelled(ek100_dir):
    segments = read_segments(ek100_dir / "EPIC_100_test_timestamps.csv")
    assert len(segments) == 13092
    assert not segments[0].labelled
    with pytest.raises(AnnotationError, match="labels required"):
        read_segments(ek100_dir / "EPIC_100_test_timestamps.csv", require_labels=True)


def _write(tmp_path, *rows, header=HEADER):
    path = tmp_path / "segments.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        (GOOD.replace("00:00:01.89", "00:00:00.00"), "stop_timestamp", "not after start"),
        (GOOD.replace("00:00:01.89", "00:00:0x.89"), "stop_timestamp", "HH:MM:SS"),
        (GOOD.replace(",1,113,", ",200,113,"), "stop_frame", "before start_frame"),
        (GOOD.replace(",take,0,", ",take,97,"), "verb_class", "unknown verb class id 97"),
        (GOOD.replace(",plate,2,", ",plate,-1,"), "noun_class", "unknown noun class id -1"),
        (GOOD.replace(",take,0,", ",take,zero,"), "verb_class", "not an integer"),
        (GOOD.replace("[2]", "[2"), "all_noun_classes", "not a list"),
        (GOOD.replace("take plate", ""), "narration", "empty narration"),
        (GOOD.replace("P01_11_0,", ","), "narration_id", "empty value"),
    ],
)
def test_malformed_row_names_file_line_field(tmp_path, ek100, row, field, message):
    path = _write(tmp_path, GOOD.replace("P01_11_0", "P01_11_9"), row)
    with pytest.raises(AnnotationError, match=message) as info:
        read_segments(path, verbs=ek100.verbs(), nouns=ek100.nouns())
    assert (info.value.path, info.value.line, info.value.field) == (str(path), 3, field)
    assert f"{path}:3: field '{field}'" in str(info.value)


def test_wrong_field_count_missing_column_duplicate(tmp_path):
    path = _write(tmp_path, GOOD, GOOD.rsplit(",", 2)[0])
    with pytest.raises(AnnotationError, match=r"segments.csv:3: expected 15 fields"):
        read_segments(path)
    path = _write(tmp_path, GOOD, header=HEADER.replace("stop_timestamp", "stop"))
    with pytest.raises(AnnotationError, match=r":1: missing required column\(s\): stop_timestamp"):
        read_segments(path)
    path = _write(tmp_path, GOOD, GOOD)
    with pytest.raises(AnnotationError, match=r":3: field 'narration_id': duplicate .* line 2"):
        read_segments(path)
    with pytest.raises(AnnotationError, match="file not found"):
        read_segments(tmp_path / "absent.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(AnnotationError, match="empty file"):
        read_segments(tmp_path / "empty.csv")


def test_class_file_errors(tmp_path):
    path = tmp_path / "classes.csv"
    path.write_text(
        "id,key,instances,category\n0,take,\"['take']\",retrieve\n2,put,\"['put']\",leave\n"
    )
    with pytest.raises(AnnotationError, match=r"classes.csv:3: field 'id': class ids must run"):
        read_classes(path, "verb")
    path.write_text("id,key,category\n0,take,retrieve\n")
    with pytest.raises(AnnotationError, match="missing required column"):
        read_classes(path, "verb")
