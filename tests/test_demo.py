"""The demo pipeline on the embedded kitchen (small settings), and HTML escaping of its pages."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from verbnoun.bench.questions import read_questions
from verbnoun.demo import (
    NULL_SEED,
    PRIOR_RULE,
    STAGES,
    DemoRecipe,
    demo_claims,
    evaluation_plan,
    render_html,
    run_demo,
)
from verbnoun.model.kitchen_base import kitchen_base_path


@pytest.mark.slow
def test_demo_runs_every_stage(tmp_path, capsys):
    out = tmp_path / "demo"
    report = run_demo(
        out, seed=1, videos=6, validation_videos=2, steps=12, specialist_epochs=2, progress=True
    )
    assert report == out / "report.html"
    # output is not a terminal here: plain lines, one per stage start and end, no control
    # characters, and the training's count, rate and ETA every few percent
    log = capsys.readouterr().out
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", log)
    for number, stage in enumerate(STAGES, 1):
        assert f"demo [{number}/{len(STAGES)}] {stage}: started" in log
        assert re.search(rf"demo \[{number}/{len(STAGES)}\] {stage}: done in \d", log)
    assert re.search(r"^training: 12/12 \(100%\), [\d.e+-]+/s, elapsed ", log, re.M)
    assert re.search(r"^evaluating: started, \d+ to do", log, re.M)
    data = json.loads((out / "benchmarks.json").read_text())
    names = [s["name"] for s in data["benchmarks"]]
    assert names == [
        "validation, random distractors",
        f"validation, {PRIOR_RULE} distractors",
        "validation, specialist distractors",
    ]
    for section in data["benchmarks"]:
        questions = read_questions(out / section["questions_file"])
        assert section["summary"]["questions"] == len(questions) > 0
    hard, data_random = data["benchmarks"][2]["summary"], data["benchmarks"][0]["summary"]
    grid = data["benchmarks"][1]["summary"]
    assert set(hard["distractor_sources"]) == {"specialist"}
    # the hard and the random-distractor mixtures differ only in their MQA distractors
    hard_mix = yaml.safe_load((out / "sft" / "mixture.yaml").read_text())["datasets"]
    random_mix = yaml.safe_load((out / "sft" / "mixture-random.yaml").read_text())["datasets"]
    assert [d["json_path"] for d in random_mix] == [
        d["json_path"].replace("mqa-", "mqa-random-") for d in hard_mix
    ]
    for folder, strategy in (("mqa-0", "specialist"), ("mqa-random-0", "random")):
        manifest = json.loads((out / "sft" / folder / "sft.manifest.json").read_text())
        assert manifest["mqa_distractors"]["strategy"] == strategy
        assert manifest["settings"]["specialist_pool"] == (5 if strategy == "specialist" else 0)
    # every arm from the same start; the null arm: random MQA again, another training seed
    arms = {"model": ("mixture.yaml", 1), "random-mqa": ("mixture-random.yaml", 1),
            "random-mqa-null": ("mixture-random.yaml", 1 + NULL_SEED)}  # fmt: skip
    for name, (mixture, seed) in arms.items():
        config = yaml.safe_load((out / "train" / name / "config.yaml").read_text())
        assert config["model"]["action_tokens"] == 1
        assert config["data"]["mixture"] == str(out / "sft" / mixture)
        assert config["seed"] == seed
    # the ablation: the trained model's weights, without the action token in its input
    from verbnoun.model.checkpoint import load_model

    trained = load_model(out / "train" / "model" / "checkpoints" / "step-000012")
    ablated = load_model(out / "train" / "model" / "no-action-token")
    assert trained.config.action_tokens == 1 and ablated.config.action_tokens == 0
    assert ablated.model.action_supervision is None
    weights = trained.state_dict()
    for key, value in ablated.state_dict().items():
        assert torch.equal(value, weights[key]), key
    plan = evaluation_plan(DemoRecipe())
    runs = sorted(p.name for p in (out / "eval").iterdir())
    assert runs == sorted(p.label for p in plan)
    files = {"random": 0, "grid": 1, "hard": 2}
    for planned in plan:
        metrics = json.loads((out / "eval" / planned.label / "metrics.json").read_text())
        config = json.loads((out / "eval" / planned.label / "config.json").read_text())
        bench = data["benchmarks"][files[planned.bench]]["summary"]
        assert metrics["overall"]["n"] == bench["questions"]
        # the letter is the primary score, option likelihood the secondary; controls recorded
        assert config.get("frames_control", "none") == planned.control
        if config["model"] == "llavaction":
            assert config["model_settings"]["mode"] == planned.mode
    summary = json.loads((out / "summary.json").read_text())
    for run in runs:
        bench, _, model = run.partition("-")
        metrics = json.loads((out / "eval" / run / "metrics.json").read_text())
        assert summary["accuracy"][model][bench] == metrics["overall"]["accuracy"]
    gain = summary["hard_training"]
    assert gain["scoring"] == "letters"
    assert gain["gain"] == round(gain["hard_mqa_model"] - gain["random_mqa_model"], 4)
    assert 0.0 <= gain["mcnemar"]["p_value"] <= 1.0
    assert gain["text"]["hard-model-text"] == round(summary["accuracy"]["model-text"]["hard"], 4)
    # where both arms started: the shipped base, untouched, on the same questions
    base = summary["accuracy"]["base"]["hard"]
    assert gain["over_base"] == {
        arm: round(summary["accuracy"][arm]["hard"] - base, 4) for arm in ("model", "random-mqa")
    }
    base_config = json.loads((out / "eval" / "hard-base" / "config.json").read_text())
    assert str(kitchen_base_path()) in json.dumps(base_config)

    # the controls, each recomputed here from the runs' predictions
    def right(label):
        lines = (out / "eval" / label / "predictions.jsonl").read_text().splitlines()
        return {r["id"]: r["correct"] for r in map(json.loads, lines)}

    def difference(a, b):
        ra, rb = right(a), right(b)
        return round((sum(ra.values()) - sum(rb[i] for i in ra)) / len(ra), 4)

    controls = summary["controls"]
    for control in ("other-clip", "blank"):
        pair = controls[control]["gain"]
        assert pair["difference"] == difference(
            f"hard-model-{control}", f"hard-random-mqa-{control}"
        )
        for arm in ("model", "random-mqa"):
            seeing = controls[control][f"{arm}_seeing"]
            assert seeing["difference"] == difference(f"hard-{arm}", f"hard-{arm}-{control}")
    blind = controls["blind_reader"]
    assert blind["fitted_on_hard_records"] == summary["accuracy"]["blind"]["hard"]
    assert blind["model_over_blind"]["difference"] == difference("hard-model", "hard-blind")
    blind_config = json.loads((out / "eval" / "hard-blind" / "config.json").read_text())
    assert [Path(f["file"]).parent.name for f in blind_config["model_settings"]["fitted_on"]] == [
        "mqa-0", "mqa-1", "mqa-2"
    ]  # fmt: skip
    null = controls["null_pair"]["hard"]
    assert null["difference"] == difference("hard-random-mqa", "hard-random-mqa-null")
    assert null["differs"] == (null["mcnemar"]["p_value"] < 0.05)
    claimed = {c["claim"] for c in summary["findings"]}
    assert len(claimed) == len(demo_claims())  # every claim's runs are there
    page = report.read_text()
    data = json.loads(re.search(r"id='report-data'>(.*?)</script>", page, re.S).group(1))
    counts = {b["name"]: b["count"] for b in data["benchmarks"]}
    assert counts == {"validation-hard": hard["questions"],
                      "validation-grid": grid["questions"],
                      "validation-random": data_random["questions"]}  # fmt: skip
    # the finding the demo exists for is stated at the top of its page
    findings = page.split("<h2>findings</h2>", 1)[1].split("<h2>", 1)[0]
    claim = summary["findings"][0]
    assert claim["claim"].startswith("training on hard MQA beats training on random MQA")
    assert html.escape(claim["claim"]) in findings
    assert ("<b>held</b>" if claim["held"] else "<b>not held</b>") in findings
    # a second run reuses every stage and resumes the evaluations (nothing answered twice)
    before = (out / "eval" / "hard-model" / "predictions.jsonl").read_bytes()
    run_demo(out, seed=1, videos=6, validation_videos=2, steps=12, specialist_epochs=2)
    assert (out / "eval" / "hard-model" / "predictions.jsonl").read_bytes() == before


def test_benchmark_page_escapes_every_string():
    summary = {
        "questions": 1, "correct_letters": {"A": 1}, "distractor_sources": {"<b>x</b>": 1},
        "distractors_sharing": {"verb": {"count": 0, "fraction": 0}},
    }  # fmt: skip
    report = {
        "run": "<script>alert(1)</script>",
        "benchmarks": [{
            "name": "a & b", "questions_file": "q<1>.jsonl", "sha256": "0", "summary": summary,
            "samples": [{"id": "<i>", "prompt": "<|im_start|>", "answer": "A. <u>"}],
        }],
    }  # fmt: skip
    page = render_html(report)
    for raw in ("<script>", "<b>x", "<i>", "<u>", "<|im_start|>", "q<1>"):
        assert raw not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "a &amp; b" in page
