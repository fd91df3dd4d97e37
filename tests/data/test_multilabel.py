"""Several labels per segment (issue 25): the reader on each seed set's published format, written
here as a few rows in that exact format, and its refusals of bad label lists.

* ``configs/datasets/animal-kingdom.yaml`` reads Animal Kingdom's space-separated frame lists
  (one row per frame, comma-separated labels) into one segment per clip spanning its frames;
* ``configs/datasets/meccano.yaml`` reads MECCANO's action CSVs (frames named ``00012.jpg`` at
  12 fps) with the class names gathered from the tables;
* ``configs/datasets/epfl-smart-kitchen-30.yaml`` reads the (assumed) EPFL-Smart-Kitchen rows;
* ``multi_label.rows: per_label`` (one row per label) and ``one`` (a list in a cell) for both
  kinds of labels; single-label descriptions read as before (no ``action_ids``);
* an empty label list, an unknown id or key in a list, a label twice in one segment and unequal
  verb/noun lists are each refused by the CLI with one line naming the file and the line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from damaged.damagetools import refused as refused_by_cli
from verbnoun.cli import main
from verbnoun.data.dataset import open_dataset
from verbnoun.errors import AnnotationError, DatasetDescriptionError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "datasets"

AK_HEADER = "original_vido_id video_id frame_id path labels\n"


def ak_rows(clip: str, number: int, frames: int, labels: str) -> str:
    return "".join(
        f"{clip} {number} {f} {clip}/{clip}_f{f:06d}.jpg {labels}\n" for f in range(frames)
    )


def write_animal_kingdom(root: Path, extra: str = "") -> Path:
    """Animal Kingdom's action recognition folder with a few clips in the published format."""
    (root / "annotation").mkdir(parents=True)
    (root / "annotation" / "val.csv").write_text(
        AK_HEADER
        + ak_rows("AAACXZTV", 0, 4, "2,7")
        + ak_rows("AAAUILHH", 1, 3, "5")
        + ak_rows("ABCDEFGH", 2, 2, "7,2,9")
        + ak_rows("BBBBBBBB", 3, 2, "1")
        + ak_rows("CCCCCCCC", 4, 2, "3")
        + ak_rows("DDDDDDDD", 5, 2, "4,6")
        + extra
    )
    (root / "annotation" / "train.csv").write_text(AK_HEADER + ak_rows("EEEEEEEE", 6, 2, "8,0"))
    names = ["Abseiling", "Attacking", "Eating", "Flying", "Swimming", "Walking", "Sleeping",
             "Attending", "Drinking", "Hopping"]  # fmt: skip
    # the first sheet of df_action.xlsx ("AR_count") saved as CSV (rows here in reverse order)
    (root / "annotation" / "df_action.csv").write_text(
        "S/N,action_category,action,index,segment,count\n"
        + "".join(
            f"{7 * i % 10},Movement,{n},{i},head,{10 - i}\n"
            for i, n in reversed(list(enumerate(names)))
        )
    )
    return root


def test_animal_kingdom_frame_lists_read_one_segment_per_clip(tmp_path):
    root = write_animal_kingdom(tmp_path / "ak")
    dataset = open_dataset(CONFIGS / "animal-kingdom.yaml", root)
    assert dataset.multi_label
    segments = dataset.segments("validation", require_labels=True)
    assert [s.narration_id for s in segments] == [
        "AAACXZTV", "AAAUILHH", "ABCDEFGH", "BBBBBBBB", "CCCCCCCC", "DDDDDDDD",
    ]  # fmt: skip
    clip = segments[0]
    assert clip.action_ids == ("2", "7") and clip.action_class == 2
    assert clip.all_action_ids == ("2", "7")
    assert (clip.start, clip.stop) == (0.0, pytest.approx(4 / 30))  # 4 frames at 30 fps
    assert clip.narration == "Eating; Attending"
    assert segments[1].action_ids == ("5",) and segments[1].multi_label
    assert segments[2].action_ids == ("7", "2", "9")
    # class names from the exported sheet, its rows in any order
    classes = dataset.action_classes()
    assert classes.keys[:3] == ("Abseiling", "Attacking", "Eating")
    assert classes.categories[0] == "Movement"
    vocabulary = dataset.action_vocabulary()
    assert vocabulary.narrations["9"] == {"Hopping": 1}
    assert set(vocabulary.actions) == {str(i) for i in range(10)}


def test_animal_kingdom_frame_lists_with_a_type_column(tmp_path):
    # some copies of the frame lists carry a sixth column, the clip's split
    root = write_animal_kingdom(tmp_path / "ak")
    path = root / "annotation" / "val.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + " type", *(line + " val" for line in lines[1:])]) + "\n")
    segments = open_dataset(CONFIGS / "animal-kingdom.yaml", root).segments("validation")
    assert segments[0].action_ids == ("2", "7") and len(segments) == 6


def test_animal_kingdom_labels_may_differ_between_frames(tmp_path):
    # a clip whose frames carry different labels: the union, in order of first appearance
    extra = "FFFFFFFF 9 0 FFFFFFFF/f0.jpg 1\nFFFFFFFF 9 1 FFFFFFFF/f1.jpg 1,3\n"
    root = write_animal_kingdom(tmp_path / "ak", extra)
    segments = open_dataset(CONFIGS / "animal-kingdom.yaml", root).segments("validation")
    assert segments[-1].action_ids == ("1", "3")


def write_meccano(root: Path, header: bool = True) -> Path:
    root.mkdir(parents=True)
    head = "video_id,action_id,action_name,start_frame,end_frame\n" if header else ""
    rows = {
        "train": [
            ("0001", 0, "check_instruction_booklet", "00000.jpg", "00030.jpg"),
            ("0001", 1, "take_screwdriver", "00031.jpg", "00040.jpg"),
            ("0001", 2, "screw_screw_with_screwdriver", "00041.jpg", "00090.jpg"),
            ("0002", 3, "put_screwdriver", "00010.jpg", "00022.jpg"),
        ],
        "val": [
            ("0003", 2, "screw_screw_with_screwdriver", "00012.jpg", "00048.jpg"),
            ("0003", 4, "take_bar", "00049.jpg", "00060.jpg"),
            ("0003", 5, "align_bar", "00061.jpg", "00075.jpg"),
        ],
        "test": [
            ("0004", 6, "plug_rod", "00100.jpg", "00124.jpg"),
            ("0004", 0, "check_instruction_booklet", "00130.jpg", "00160.jpg"),
        ],
    }
    for split, items in rows.items():
        (root / f"MECCANO_{split}_actions.csv").write_text(
            head + "".join(",".join(str(v) for v in item) + "\n" for item in items)
        )
    return root


def test_meccano_action_tables(tmp_path):
    root = write_meccano(tmp_path / "meccano")
    dataset = open_dataset(CONFIGS / "meccano.yaml", root)
    assert not dataset.multi_label and dataset.single_label
    classes = dataset.action_classes()
    assert len(classes) == 7 and classes.keys[2] == "screw_screw_with_screwdriver"
    segments = dataset.segments("validation", require_labels=True)
    first = segments[0]
    assert (first.video_id, first.action_class, first.action_ids) == ("0003", 2, ())
    assert (first.start_frame, first.start, first.stop) == (12, 1.0, 4.0)  # 12 fps
    assert first.narration == "screw_screw_with_screwdriver"
    assert [s.narration_id for s in segments] == ["0003_0", "0003_1", "0003_2"]


def test_meccano_without_a_header_row(tmp_path):
    root = write_meccano(tmp_path / "meccano", header=False)
    text = (CONFIGS / "meccano.yaml").read_text()
    text = text.replace("  format: csv\n", "  format: csv\n  header: false\n")
    for name, position in (("video_id", 0), ("action_id", 1), ("action_name", 2),
                           ("start_frame", 3), ("end_frame", 4)):  # fmt: skip
        text = re.sub(rf"\b{name}\b", f'"{position}"', text)
    description = root / "meccano.yaml"
    description.write_text(text)
    segments = open_dataset(description).segments("test", require_labels=True)
    assert [(s.video_id, s.action_class, s.start_frame) for s in segments] == [
        ("0004", 6, 100), ("0004", 0, 130),
    ]  # fmt: skip


def test_epfl_smart_kitchen_assumed_rows(tmp_path):
    root = tmp_path / "esk"
    (root / "Annotations").mkdir(parents=True)
    (root / "Annotations" / "verb_classes.csv").write_text("id,key\n0,take\n1,cut\n2,pour\n")
    (root / "Annotations" / "noun_classes.csv").write_text("id,key\n0,knife\n1,onion\n")
    header = "segment_id,video_id,participant_id,start,end,verb_id,noun_id\n"
    (root / "Annotations" / "test.csv").write_text(
        header + "s1,YH2002_2023_12_04,YH2002,1.5,3.25,0,0\ns2,YH2002_2023_12_04,YH2002,3.5,6,1,1\n"
    )
    segments = open_dataset(CONFIGS / "epfl-smart-kitchen-30.yaml", root).segments("test")
    assert [(s.action_id, s.start, s.stop, s.narration) for s in segments] == [
        ("0:0", 1.5, 3.25, "take knife"), ("1:1", 3.5, 6.0, "cut onion"),
    ]  # fmt: skip


# ----------------------------------------------------------------------- other row layouts


def write_table(root: Path, labels: str, rows: str, multi: str, columns: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "segments.csv").write_text(rows)
    (root / "verbs.csv").write_text("key\ntake\nput\nopen\n")
    (root / "nouns.csv").write_text("key\ncup\nlid\n")
    (root / "actions.csv").write_text("key\nwalk\neat\ngroom\n")
    classes = (
        "  action: actions.csv\n"
        if labels == "action"
        else "  verb: verbs.csv\n  noun: nouns.csv\n"
    )
    description = root / "set.yaml"
    description.write_text(
        f"labels: {labels}\nsegments:\n  columns: {{{columns}}}\n{multi}"
        f"classes:\n{classes}splits:\n  validation: segments.csv\n"
    )
    return description


VERB_NOUN = "id: id, video: video, start: start, stop: stop, verb: verb, noun: noun"
ACTION = "id: id, video: video, start: start, stop: stop, action: action"


def test_a_list_in_a_cell_pairs_verbs_and_nouns(tmp_path):
    rows = 'id,video,start,stop,verb,noun\na,v1,0,2,"0;2","1;0"\nb,v1,3,4,1,1\nc,v1,5,6,0;0,0;1\n'
    path = write_table(tmp_path, "verb_noun", rows, "  multi_label: {separator: ';'}\n", VERB_NOUN)
    dataset = open_dataset(path)
    first, second, third = dataset.segments("validation")
    assert first.action_ids == ("0:1", "2:0")
    assert (first.verb, first.noun_class, first.narration) == ("take", 1, "take lid; open cup")
    assert second.action_ids == ("1:1",)
    assert third.action_ids == ("0:0", "0:1")  # a verb may repeat: its actions differ


def test_one_row_per_label(tmp_path):
    rows = "id,video,start,stop,action\na,v1,0,2,walk\nb,v1,3,4,eat\na,v1,0,2,groom\n"
    multi = "  class_values: key\n  multi_label: {rows: per_label}\n"
    dataset = open_dataset(write_table(tmp_path, "action", rows, multi, ACTION))
    a, b = dataset.segments("validation")
    assert (a.narration_id, a.action_ids, a.line) == ("a", ("0", "2"), 2)
    assert (b.narration_id, b.action_ids) == ("b", ("1",))


def test_single_label_descriptions_read_as_before(tmp_path):
    rows = 'id,video,start,stop,action\na,v1,0,2,"[1, 2]"\n'
    dataset = open_dataset(write_table(tmp_path, "action", rows, "", ACTION))
    (segment,) = dataset.segments("validation")
    assert not dataset.multi_label
    assert (segment.action_class, segment.action_ids, segment.all_action_ids) == (1, (), ("1",))


# ----------------------------------------------------------------------- refusals


def refused(capsys, path: Path, place: str, out: Path) -> str:
    """The CLI refuses the build with exactly one error line naming ``segments.csv:LINE``
    (the damaged-input battery's check) and writes no questions."""
    argv = ["mqa", "build", "--dataset", path, "--out", out]
    line = refused_by_cli(capsys, argv, file="segments.csv", place=place)
    assert not out.exists()
    return line


BAD_LISTS = [
    ("empty list", "action", 'a,v1,0,2,""\n', "", r"segments\.csv:3: field 'action': empty action"),
    ("empty list (brackets)", "action", "a,v1,0,2,[]\n", "", r"segments\.csv:3: .*empty action"),
    ("unknown id in a list", "action", 'a,v1,0,2,"0,7"\n', "", r"segments\.csv:3: .*unknown action class id 7"),
    ("unknown key in a list", "action", 'a,v1,0,2,"walk,fly"\n', "  class_values: key\n",
     r"segments\.csv:3: .*'fly' is not in the class list"),
    ("label twice in a cell", "action", 'a,v1,0,2,"1,2,1"\n', "", r"segments\.csv:3: .*given twice in one segment"),
    ("label twice over rows", "action_rows", "a,v1,0,2,1\na,v1,0,2,1\n", "",
     r"segments\.csv:4: .*label 1 given twice in segment 'a'"),
    ("rows of one segment disagree", "action_rows", "a,v1,0,2,1\na,v1,0,3,2\n", "",
     r"segments\.csv:4: .*start/stop differ"),
    ("action twice (verb/noun)", "verb_noun", 'a,v1,0,2,"0,0","1,1"\n', "",
     r"segments\.csv:3: .*action 0:1 given twice"),
    ("unequal verb/noun lists", "verb_noun", 'a,v1,0,2,"0,1","1"\n', "",
     r"segments\.csv:3: .*2 verbs but 1 nouns"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "kind", "bad", "values", "place"), BAD_LISTS,
                         ids=[case[0] for case in BAD_LISTS])  # fmt: skip
def test_bad_label_lists_are_refused_in_one_line(tmp_path, capsys, what, kind, bad, values, place):
    if kind == "verb_noun":
        header, columns, labels = "id,video,start,stop,verb,noun\n", VERB_NOUN, "verb_noun"
        good = 'z,v1,5,6,"0","0"\n'
    else:
        header, columns, labels = "id,video,start,stop,action\n", ACTION, "action"
        good = "z,v1,5,6,0\n" if values == "" else "z,v1,5,6,walk\n"
    rows_mode = "per_label" if kind == "action_rows" else "one"
    multi = f"{values}  multi_label: {{rows: {rows_mode}}}\n"
    path = write_table(tmp_path, labels, header + good + bad, multi, columns)
    refused(capsys, path, place, tmp_path / "q.jsonl")


def test_a_bad_description_is_refused(tmp_path):
    rows = "id,video,frame,action\na,v1,0,1\n"
    path = write_table(tmp_path, "action", rows, "  multi_label: {rows: per_frame}\n",
                       "id: id, video: video, frame: frame, action: action")  # fmt: skip
    with pytest.raises(DatasetDescriptionError, match=r"set\.yaml.*segments\.fps.*needs fps"):
        open_dataset(path)
    path = write_table(tmp_path, "action", rows, "  multi_label: {rows: sometimes}\n", ACTION)
    with pytest.raises(DatasetDescriptionError, match=r"multi_label\.rows.*per_label"):
        open_dataset(path)
    path = write_table(tmp_path, "action", rows, "", "id: id, video: video, frame: frame, "
                       "start: s, stop: t, action: action")  # fmt: skip
    with pytest.raises(DatasetDescriptionError, match=r"frame column needs multi_label"):
        open_dataset(path)


def test_class_tables_must_agree_and_cover_every_id(tmp_path):
    root = write_meccano(tmp_path / "meccano")
    path = root / "MECCANO_test_actions.csv"
    path.write_text(path.read_text().replace("0,check_instruction_booklet", "0,check_booklet"))
    dataset = open_dataset(CONFIGS / "meccano.yaml", root)
    with pytest.raises(AnnotationError, match=r"test_actions\.csv:3: .*class 0 is 'check_booklet'"):
        dataset.action_classes()
    root = write_meccano(tmp_path / "meccano2")
    path = root / "MECCANO_test_actions.csv"
    path.write_text(path.read_text().replace("0004,6,plug_rod", "0004,8,plug_rod"))
    with pytest.raises(AnnotationError, match=r"must cover 0\.\.8; missing 6, 7"):
        open_dataset(CONFIGS / "meccano.yaml", root).action_classes()


@pytest.mark.parametrize("name", ["animal-kingdom", "meccano"])
def test_mqa_build_runs_as_is_on_each_description(tmp_path, capsys, name):
    if name == "animal-kingdom":
        root = write_animal_kingdom(tmp_path / "ak")
    else:
        root = write_meccano(tmp_path / "meccano")
    out = tmp_path / "q.jsonl"
    argv = ["mqa", "build", "--dataset", str(CONFIGS / f"{name}.yaml"), "--annotations",
            str(root), "--split", "validation", "--num-options", "3", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    segments = open_dataset(CONFIGS / f"{name}.yaml", root).segments("validation")
    assert [r["id"] for r in records] == [s.narration_id for s in segments]
    for record, segment in zip(records, segments, strict=True):
        options = [o["action_id"] for o in record["options"]]
        if name == "animal-kingdom":  # multi-select: every behaviour of the clip is an answer
            assert record["action_ids"] == list(segment.action_ids)
            assert sorted(options[i] for i in record["answer_indices"]) == sorted(
                segment.action_ids
            )
            assert len(options) == max(3, len(segment.action_ids) + 1)
        else:
            assert "action_ids" not in record
            assert options[record["answer_index"]] == segment.action_id
