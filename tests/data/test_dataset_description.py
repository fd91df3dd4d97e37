"""Generic data sets: a description YAML read into the objects the EK100 path uses.

* EK100 described by ``configs/datasets/ek100.yaml`` gives the EK100 benchmark's exact bytes;
* the synthetic kitchen's ``dataset.yaml`` gives what its EK100-schema CSVs give;
* a single-label data set (one ``action`` column) runs end to end through the command line:
  build, stats, eval with the random and prior baselines, score, SFT data, and frames;
* bad descriptions and bad rows fail with errors naming the file and the key or line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from videotools import frame_numbers, write_numbered

from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.bench.questions import read_questions
from verbnoun.cli import main
from verbnoun.data.dataset import GenericDataset, load_description, open_dataset
from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
from verbnoun.data.synth import write_kitchen_description
from verbnoun.errors import AnnotationError, DatasetDescriptionError, VerbnounError
from verbnoun.train.sft import SftSettings, build_sft

EK100_YAML = Path(__file__).resolve().parents[2] / "configs" / "datasets" / "ek100.yaml"


# ----------------------------------------------------------------------------- EK100


@pytest.mark.slow  # four builds of the 9,668 questions: 10-25 s on 2 shared cores
def test_ek100_description_gives_the_ek100_bytes(ek100_dir, ek100, tmp_path, capsys):
    direct = tmp_path / "direct-random.jsonl"
    reference = build_benchmark(ek100, direct, BuildSettings())  # the session's parsed tables
    generic = tmp_path / "generic-random.jsonl"
    args = ["mqa", "build", "--dataset", str(EK100_YAML), "--annotations", str(ek100_dir),
            "--split", "validation", "--out", str(generic)]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    assert generic.read_bytes() == direct.read_bytes()
    manifest = json.loads((tmp_path / "generic-random.manifest.json").read_text())
    for key in ("kind", "format_version", "settings", "split_files", "counts"):
        assert manifest[key] == reference[key], key
    assert manifest["output"]["sha256"] == reference["output"]["sha256"]
    assert manifest["annotations"] == str(ek100_dir) and manifest["dataset"] == str(EK100_YAML)
    inputs = {i["path"]: i["sha256"] for i in manifest["inputs"] if "role" not in i}
    assert inputs.items() <= {i["path"]: i["sha256"] for i in reference["inputs"]}.items()
    assert set(inputs) >= {*manifest["vocabulary"]["sources"], "EPIC_100_verb_classes.csv"}
    fallback = reference["vocabulary"]["train_fallback"]
    listed = manifest["vocabulary"]["action_lists"]["train"]
    assert manifest["vocabulary"]["actions"] == reference["vocabulary"]["actions"] == 3806
    assert manifest["vocabulary"]["sources"] == reference["vocabulary"]["sources"]
    assert (listed["action_list_rows"], listed["segments"]) == (
        fallback["retrieval_rows"], fallback["uda_segments"]
    )  # fmt: skip
    assert listed["actions_outside_vocabulary"] == fallback["uda_actions_outside_vocabulary"]

    # prior-hard, with both data sets reused (their parsed tables are cached)
    dataset = open_dataset(EK100_YAML, ek100_dir)
    settings = BuildSettings(distractors="prior-hard", seed=3)
    build_benchmark(ek100, tmp_path / "direct-hard.jsonl", settings)
    build_benchmark(dataset, tmp_path / "generic-hard.jsonl", settings)
    hard = (tmp_path / "generic-hard.jsonl").read_bytes()
    assert hard == (tmp_path / "direct-hard.jsonl").read_bytes() != generic.read_bytes()
    # the breakdowns of `eval --annotations` come out the same from the description
    assert dataset.tail_classes() == ek100.tail_classes()
    assert dataset.unseen_participants("validation") == ek100.unseen_participants("validation")


# ----------------------------------------------------------------------------- synthetic kitchen


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("kitchen")
    write_kitchen_annotations(root / "annotations", kitchen_script(10, 1))
    write_kitchen_description(root)
    return root


@pytest.mark.parametrize("distractors", ["random", "prior-hard"])
def test_kitchen_description_equals_its_csvs(kitchen, tmp_path, distractors):
    settings = BuildSettings(distractors=distractors, option_text="official_key", seed=2)
    build_benchmark(kitchen / "annotations", tmp_path / "csv.jsonl", settings)
    build_benchmark(kitchen / "dataset.yaml", tmp_path / "yaml.jsonl", settings)
    assert (tmp_path / "yaml.jsonl").read_bytes() == (tmp_path / "csv.jsonl").read_bytes()
    assert len(read_questions(tmp_path / "yaml.jsonl")) > 10


def test_kitchen_sft_from_description_equals_csvs(kitchen, tmp_path):
    settings = SftSettings(tasks=("mqa", "prior", "temporal", "narration"))
    a = build_sft(kitchen / "annotations", tmp_path / "csv", settings)
    b = build_sft(kitchen / "dataset.yaml", tmp_path / "yaml", settings)
    assert {k: v["sha256"] for k, v in a["outputs"].items()} == {
        k: v["sha256"] for k, v in b["outputs"].items()
    }
    assert b["dataset"].endswith("dataset.yaml")


# ----------------------------------------------------------------------------- single label

CLASSES = "key,synonyms\ngroom,self-groom|clean\nrear,stand up\nwalk,\nsniff,explore\n"
# frames at 30 fps; labels are keys or synonyms (case-insensitive)
TRAIN = (
    "clip,begin,end,behaviour,note\n"
    "mouse1_day1,0,30,groom,\nmouse1_day1,36,66,walk,\nmouse1_day1,70,100,Walk,\n"
    "mouse1_day1,105,130,clean,\nmouse1_day1,131,160,stand up,\nmouse1_day1,161,175,sniff,\n"
)
VALIDATION = [
    {"clip": "mouse2_day1", "begin": 3, "end": 30, "behaviour": "rear", "note": "tall"},
    {"clip": "mouse2_day1", "begin": 31, "end": 62, "behaviour": "groom"},
    {"clip": "mouse2_day1", "begin": 64, "end": 88, "behaviour": "explore"},
    {"clip": "mouse2_day1", "begin": 90, "end": 120, "behaviour": "walk"},
]
SINGLE_YAML = """\
name: mouse-behaviour
labels: action
segments:
  columns: {video: clip, start: begin, stop: end, action: behaviour}
  time: frames
  fps: 30
  class_values: key
classes:
  action: behaviours.csv
splits:
  train: train.csv
  validation: validation.jsonl
evaluation:
  tail: {action: [sniff]}
  unseen_participants: {validation: [mouse2]}
videos: {layout: ek100, root: videos}
"""


def write_single_label(root: Path, yaml_text: str = SINGLE_YAML, train: str = TRAIN) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "behaviours.csv").write_text(CLASSES)
    (root / "train.csv").write_text(train)
    (root / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in VALIDATION))
    (root / "dataset.yaml").write_text(yaml_text)
    return root / "dataset.yaml"


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mice")
    description = write_single_label(root)
    for video, frames in (("mouse1_day1", 180), ("mouse2_day1", 125)):
        write_numbered(
            root / "videos" / video.split("_")[0] / "videos" / f"{video}.MP4", frames, 30
        )
    return description


def test_single_label_segments(single):
    dataset = open_dataset(single)
    assert dataset.single_label and dataset.action_classes().keys == (
        "groom",
        "rear",
        "walk",
        "sniff",
    )
    train = dataset.segments("train", require_labels=True)
    assert [s.action_id for s in train] == ["0", "2", "2", "0", "1", "3"]
    assert train[0].narration_id == "mouse1_day1_0" and train[0].participant_id == "mouse1"
    assert (train[1].start, train[1].stop, train[1].start_frame) == (1.2, 2.2, 36)
    assert train[1].verb_class is None and train[1].narration == "walk"
    vocabulary = dataset.action_vocabulary()
    assert vocabulary.actions == ("0", "1", "2", "3") and vocabulary.frequency("2") == 3
    with pytest.raises(VerbnounError, match="no verb classes"):
        dataset.verbs()


def test_single_label_end_to_end(single, tmp_path, capsys):
    questions = tmp_path / "q.jsonl"
    build = [
        "mqa",
        "build",
        "--dataset",
        str(single),
        "--out",
        str(questions),
        "--num-options",
        "3",
    ]
    assert main([*build, "--distractors", "prior-hard"]) == 0, capsys.readouterr().err
    assert "wrote 4 questions" in capsys.readouterr().out
    built = read_questions(questions)
    assert len(built) == 4
    for q in built:
        assert q.single_label and q.verb_class is None and q.noun_class is None
        assert {o.action_id for o in q.options} <= {"0", "1", "2", "3"}
        assert q.options[q.answer_index].action_id == q.action_id
        assert {o.source for o in q.options} <= {"ground_truth", "prior-hard:frequency"}
        assert "Here are the options of actions you are selecting:\nA. " in q.prompt(8)
    line = json.loads(questions.read_text().splitlines()[0])
    assert (line["verb_class"], line["noun_class"], line["action_id"]) == (None, None, "1")
    assert line["options"][line["answer_index"]]["text"] == "rear"
    assert main(["mqa", "stats", str(questions), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["distractors_sharing"]["not_applicable"]["count"] == 8
    assert main(["mqa", "stats", str(questions)]) == 0
    assert "not applicable" in capsys.readouterr().out

    runs = {}
    for model in ("random", "prior"):
        out = tmp_path / model
        extra = ["--dataset", str(single)] if model == "prior" else []
        args = ["eval", "--questions", str(questions), "--model", model, "--out", str(out),
                "--no-progress", *extra]  # fmt: skip
        assert main(args) == 0, capsys.readouterr().err
        assert "accuracy" in capsys.readouterr().out
        runs[model] = json.loads((out / "metrics.json").read_text())
    prior = runs["prior"]
    assert prior["labels"] == "action" and prior["per_verb"] is None and prior["per_noun"] is None
    assert prior["recognition"]["verb"] is None and prior["recognition"]["noun"] is None
    assert prior["recognition"]["action"] == prior["overall"]["accuracy"]
    assert set(prior["per_action"]) <= {"0", "1", "2", "3"}
    assert prior["mean_class_accuracy"]["verb"] is None
    # the prior baseline picks the most frequent training action among the options
    answers = [
        json.loads(x)
        for x in (tmp_path / "prior" / "predictions.jsonl").read_text().split("\n")
        if x
    ]
    frequency = {"0": 2, "1": 1, "2": 2, "3": 1}
    for q, a in zip(built, answers, strict=True):
        counts = [frequency[o.action_id] for o in q.options]
        assert counts[a["choice"]] == max(counts)
    score = ["score", str(tmp_path / "random"), str(tmp_path / "prior"), "--dataset", str(single)]
    assert main([*score, "--json"]) == 0
    comparison = json.loads(capsys.readouterr().out)
    assert [r["answered"] for r in comparison["runs"]] == [4, 4]
    assert comparison["paired"][0]["questions"] == 4
    assert main(score) == 0 and "paired" in capsys.readouterr().out
    from verbnoun.evaluate.score import load_run

    run = load_run(tmp_path / "prior", annotations=open_dataset(single))
    assert set(run.metrics["head_tail"]) <= {"head", "tail"}
    assert run.metrics["participants"] == {
        "unseen": {"n": 4, "accuracy": prior["overall"]["accuracy"]}
    }

    sft = ["sft", "build", "--dataset", str(single), "--out", str(tmp_path / "sft"),
           "--num-options", "3"]  # fmt: skip
    assert main(sft) == 0, capsys.readouterr().err
    records = [json.loads(x) for x in (tmp_path / "sft" / "mqa.jsonl").read_text().splitlines()]
    assert len(records) == 6
    assert all(r["verb_id"] == r["noun_id"] == -1 and 0 <= r["action_id"] < 4 for r in records)
    narration = (tmp_path / "sft" / "narration.jsonl").read_text().splitlines()
    assert json.loads(narration[1])["conversations"][1]["value"] == "walk"


def test_single_label_specialist(single, tmp_path, capsys):
    ranked = {"mouse2_day1_0": ["3", "1", "0"], "mouse2_day1_1": ["2", "3", "1"],
              "mouse2_day1_2": ["3", "2", "1"], "mouse2_day1_3": ["2", "0", "1"]}  # fmt: skip
    predictions = tmp_path / "specialist.json"
    predictions.write_text(json.dumps({k: {"predictions": v} for k, v in ranked.items()}))
    questions = tmp_path / "q.jsonl"
    args = ["mqa", "build", "--dataset", str(single), "--out", str(questions), "--num-options",
            "3", "--distractors", "specialist", "--predictions", str(predictions)]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    for q in read_questions(questions):  # top 3, the truth replacing the 3rd when missed
        top = ranked[q.id][:3]
        expected = top if q.action_id in top else [*top[:2], q.action_id]
        assert sorted(o.action_id for o in q.options) == sorted(expected)
    out = tmp_path / "run"
    args = ["eval", "--questions", str(questions), "--model", "specialist", "--predictions",
            str(predictions), "--dataset", str(single), "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["overall"]["correct"] == 2  # the truth is ranked first for _2 and _3
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"mouse2_day1_0": {"predictions": ["1:2"]}}))
    assert main([*args[:6], str(bad), *args[7:]]) == 1
    assert "bad.json [mouse2_day1_0]: not an action class id below 4" in capsys.readouterr().err


def test_single_label_frames_from_the_described_layout(single):
    from verbnoun.data.video import VideoReader

    dataset = open_dataset(single)
    segment = dataset.segments("validation")[1]  # frames 31..62
    clip = VideoReader(dataset.video_layout()).read(
        segment.video_id, segment.start, segment.stop, 4
    )
    assert frame_numbers(clip.frames) == clip.indices.tolist() == [34, 42, 50, 58]


# ----------------------------------------------------------------------------- errors


def test_bad_yaml_names_the_file(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("segments: [unclosed\n")
    with pytest.raises(DatasetDescriptionError, match=r"d\.yaml(:\d+)?: not valid YAML"):
        load_description(path)


@pytest.mark.parametrize(
    ("old", "new", "key", "message"),
    [
        ("labels: action", "labels: actions", "labels", "expected one of verb_noun, action"),
        ("  time: frames", "  time: frame", "segments.time", "expected one of"),
        ("  fps: 30\n", "", "segments.fps", "needs fps"),
        ("  class_values: key", "  class_values: key\n  colour: red", "segments", "unknown key"),
        ("action: behaviour}", "verb: behaviour}", "segments.columns.action", "missing"),
        ("  action: behaviours.csv", "  verb: behaviours.csv", "classes", "unknown key"),
        ("videos: {layout: ek100", "videos: {layout: tree", "videos.layout", "expected one of"),
    ],
)
def test_bad_description_names_the_key(tmp_path, old, new, key, message):
    assert old in SINGLE_YAML
    path = write_single_label(tmp_path, SINGLE_YAML.replace(old, new))
    with pytest.raises(DatasetDescriptionError) as error:
        load_description(path)
    assert error.value.key == key and message in str(error.value)
    assert str(error.value).startswith(f"{path} [{key}]")


@pytest.mark.parametrize(
    ("train", "line", "message"),
    [
        (TRAIN.replace("mouse1_day1,36,66,walk", "mouse1_day1,36,66,dance"), 3,
         "action label 'dance' is not in the class list"),
        (TRAIN.replace("mouse1_day1,36,66", "mouse1_day1,66,36"), 3, "stop 00:00:01.20 is not after start"),
        (TRAIN.replace("mouse1_day1,36,66", "mouse1_day1,3x,66"), 3, "not a frame number"),
        (TRAIN.replace("mouse1_day1,36,66,walk,", "mouse1_day1,36,66,walk"), 3, "fields per row"),
    ],
)  # fmt: skip
def test_bad_row_names_the_file_and_line(tmp_path, train, line, message):
    dataset = GenericDataset(load_description(write_single_label(tmp_path, train=train)))
    with pytest.raises(AnnotationError) as error:
        dataset.segments("train")
    assert error.value.path == str(tmp_path / "train.csv") and error.value.line == line
    assert message in str(error.value)


def test_unknown_column_names_the_table_and_the_key(tmp_path):
    path = write_single_label(tmp_path, SINGLE_YAML.replace("video: clip", "video: video_id"))
    with pytest.raises(AnnotationError) as error:
        GenericDataset(load_description(path)).segments("train")
    assert error.value.path == str(tmp_path / "train.csv")
    assert f"column 'video_id' (from segments.columns.video in {path}) not found" in str(
        error.value
    )
    # the same through the command line: one line, exit status 1
    assert main(["mqa", "build", "--dataset", str(path), "--out", str(tmp_path / "q.jsonl")]) == 1


def test_bad_jsonl_and_unknown_split(tmp_path):
    path = write_single_label(tmp_path)
    (tmp_path / "validation.jsonl").write_text(
        '{"clip": "m_1", "begin": 1, "end": 9, "behaviour": "rear"}\n[1]\n'
    )
    dataset = GenericDataset(load_description(path))
    with pytest.raises(AnnotationError, match=r"validation\.jsonl:2: expected a JSON object"):
        dataset.segments("validation")
    with pytest.raises(
        VerbnounError, match="unknown split 'test'; the description has train, validation"
    ):
        dataset.segments("test")
