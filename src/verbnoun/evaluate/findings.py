"""What a set of runs says: models and benchmarks, the pairs worth testing, and claims tested.

In: finished (or partial) runs from :func:`verbnoun.evaluate.score.load_run`. Out: plain dicts
(JSON-ready) that the report and the demo's seed benchmark print:

* :func:`layout` groups the runs into **models** (one model = the same adapter, adapter settings
  and evaluation settings) and **benchmarks** (one benchmark = one question file, by sha256),
  the pivot of the report: accuracy with its 95% bootstrap interval per model and benchmark.
* :func:`relevant_pairs` keeps the paired tests that answer a question: on each benchmark, each
  model against each baseline (``random``, ``prior``, ``specialist`` answers) and each model
  against each other model; baselines are not tested against each other.
* A :class:`Claim` says "run ``better`` answers more questions right than run ``worse``". It is
  tested on the questions both answered (paired by question id, so one model on two benchmarks
  built from the same segments pairs too) with the exact McNemar test of
  :mod:`verbnoun.evaluate.metrics`; it **held** when the effect is positive and p < ``alpha``.
  :func:`default_claims` are the claims any run set can test; the demo passes its own.

Records with a ``failure`` (a question whose API retries were exhausted) are neither right nor
wrong: they leave accuracies and paired tests (:func:`correctness`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from verbnoun.evaluate.metrics import accuracy_summary, mcnemar_exact
from verbnoun.evaluate.score import Run

BASELINES = ("random", "prior", "specialist")
ALPHA = 0.05
_NOT_MODEL = ("questions", "questions_sha256", "created_with", "kind")


def failed(record: dict) -> bool:
    """True for a question whose answer could not be obtained (retries exhausted)."""
    return bool(record.get("failure") or record.get("failed"))


def correctness(run: Run) -> dict[str, bool]:
    """Question id -> right or wrong, over the answered questions that did not fail."""
    return {qid: bool(p["correct"]) for qid, p in run.predictions.items() if not failed(p)}


@dataclass(frozen=True)
class Claim:
    """``better`` (a run label) answers more of the shared questions right than ``worse``."""

    text: str
    better: str
    worse: str


def _common_suffix(labels: Sequence[str]) -> str:
    first = labels[0]
    n = 0
    while n < len(first) and all(len(s) > n and s[-1 - n] == first[-1 - n] for s in labels):
        n += 1
    suffix = first[len(first) - n :] if n else ""
    cut = [i for i, ch in enumerate(suffix) if ch in "-_./ :"]
    if len(suffix) == len(first) or not cut:
        return suffix if len(suffix) == len(first) else ""
    return suffix[cut[0] + 1 :]


def benchmark_kind(run: Run) -> str:
    """``random`` when every distractor of the run's questions is random, else ``hard``."""
    sources = {o.source for q in run.questions for o in q.options if o.source != "ground_truth"}
    return "random" if sources <= {"random"} else "hard"


def layout(runs: Sequence[Run]) -> dict:
    """Models (rows) and benchmarks (columns) of ``runs`` and the accuracy of each cell.

    Returns ``{"models": [{"name", "adapter", "baseline"}], "benchmarks": [{"name", "kind",
    "questions", "sha256"}], "cells": {model: {benchmark: {"run", "n", "accuracy", "ci95",
    "failed"}}}, "run_model": {label: model}, "run_benchmark": {label: benchmark}}``.
    """
    bench_of: dict[str, str] = {}
    benchmarks: list[dict] = []
    by_sha: dict[str, dict] = {}
    for run in runs:
        sha = run.config["questions_sha256"]
        if sha not in by_sha:
            stem = Path(run.config["questions"]).stem
            by_sha[sha] = {
                "name": stem,
                "kind": benchmark_kind(run),
                "questions": len(run.questions),
                "sha256": sha,
            }
            benchmarks.append(by_sha[sha])
    stems = [b["name"] for b in benchmarks]
    for b in benchmarks:
        if stems.count(b["name"]) > 1:
            b["name"] = f"{b['name']} ({b['sha256'][:8]})"
    groups: dict[str, list[Run]] = {}
    for run in runs:
        key = json.dumps(
            {k: v for k, v in run.config.items() if k not in _NOT_MODEL}, sort_keys=True
        )
        groups.setdefault(key, []).append(run)
    models: list[dict] = []
    cells: dict[str, dict] = {}
    run_model: dict[str, str] = {}
    taken: set[str] = set()
    # what labels put before the model's name on each benchmark ("hard-" of "hard-model"),
    # learnt from models run on several benchmarks, and taken off a model run on one
    prefixes: dict[str, str] = {}
    for members in groups.values():
        suffix = _common_suffix([r.label for r in members]) if len(members) > 1 else ""
        for run in members if suffix else ():
            prefixes[run.config["questions_sha256"]] = run.label[: -len(suffix)]
    for members in groups.values():
        labels = [r.label for r in members]
        name = _common_suffix(labels) if len(labels) > 1 else ""
        prefix = prefixes.get(members[0].config["questions_sha256"], "")
        if len(labels) == 1 and prefix and labels[0].startswith(prefix):
            name = labels[0][len(prefix) :]
        name = name or labels[0]
        base, k = name, 2
        while name in taken:
            name, k = f"{base} ({k})", k + 1
        taken.add(name)
        adapter = members[0].config["model"]
        models.append({"name": name, "adapter": adapter, "baseline": adapter in BASELINES})
        for run in members:
            bench = by_sha[run.config["questions_sha256"]]["name"]
            bench_of[run.label] = bench
            run_model[run.label] = name
            right = list(correctness(run).values())
            summary = accuracy_summary(right)
            cells.setdefault(name, {})[bench] = {
                "run": run.label,
                "n": summary["n"],
                "accuracy": summary["accuracy"],
                "ci95": summary["ci95"],
                "failed": sum(failed(p) for p in run.predictions.values())
                + (run.metrics.get("coverage") or {}).get("failed", 0),  # failed*.jsonl
            }
    return {
        "models": models,
        "benchmarks": benchmarks,
        "cells": cells,
        "run_model": run_model,
        "run_benchmark": bench_of,
    }


def paired(a: Run, b: Run, right: dict[str, dict[str, bool]] | None = None) -> dict:
    """Exact McNemar test of ``a`` against ``b`` on the questions both answered (by id);
    ``right``: :func:`correctness` by run label, when already computed."""
    right = right or {}
    right_a = right[a.label] if a.label in right else correctness(a)
    right_b = right[b.label] if b.label in right else correctness(b)
    common = [qid for qid in right_a if qid in right_b]
    x = [right_a[i] for i in common]
    y = [right_b[i] for i in common]
    test = mcnemar_exact(x, y)
    n = len(common)
    acc_a = sum(x) / n if n else float("nan")
    acc_b = sum(y) / n if n else float("nan")
    return {"a": a.label, "b": b.label, "questions": n, "accuracy_a": acc_a,
            "accuracy_b": acc_b, "effect": acc_a - acc_b, **test}  # fmt: skip


def relevant_pairs(runs: Sequence[Run], grid: dict | None = None) -> list[dict]:
    """Paired tests that answer a question, per benchmark: model vs baseline, model vs model."""
    grid = grid or layout(runs)
    baseline = {m["name"]: m["baseline"] for m in grid["models"]}
    by_label = {r.label: r for r in runs}
    right = {r.label: correctness(r) for r in runs}
    pairs = []
    for bench in grid["benchmarks"]:
        on_bench = [
            (m["name"], grid["cells"][m["name"]][bench["name"]]["run"])
            for m in grid["models"]
            if bench["name"] in grid["cells"][m["name"]]
        ]
        for i, first in enumerate(on_bench):
            for second in on_bench[i + 1 :]:
                if baseline[first[0]] and baseline[second[0]]:
                    continue
                # the model first, its baseline second
                (model_a, run_a), (model_b, run_b) = (
                    (second, first) if baseline[first[0]] else (first, second)
                )
                test = paired(by_label[run_a], by_label[run_b], right)
                kind = "vs baseline" if baseline[model_b] else "vs model"
                pairs.append({"benchmark": bench["name"], "model_a": model_a,
                              "model_b": model_b, "kind": kind, **test})  # fmt: skip
    return pairs


def check_claims(
    claims: Sequence[Claim], runs: Sequence[Run], *, alpha: float = ALPHA
) -> list[dict]:
    """Each claim whose two runs are present: its effect, paired test and whether it held."""
    by_label = {r.label: r for r in runs}
    results = []
    for claim in claims:
        if claim.better not in by_label or claim.worse not in by_label:
            continue
        test = paired(by_label[claim.better], by_label[claim.worse])
        held = test["questions"] > 0 and test["effect"] > 0 and test["p_value"] < alpha
        results.append({"claim": claim.text, **test, "alpha": alpha, "held": held})
    return results


def pooled(claim: Claim, run_sets: Sequence[Sequence[Run]], *, alpha: float = ALPHA) -> dict:
    """One claim over several run sets (seeds): how many held, and the test on all pairs pooled."""
    right_a: list[bool] = []
    right_b: list[bool] = []
    held = tested = positive = 0
    for runs in run_sets:
        result = check_claims([claim], runs, alpha=alpha)
        if not result:
            continue
        tested += 1
        held += result[0]["held"]
        positive += result[0]["effect"] > 0
        by_label = {r.label: r for r in runs}
        a, b = correctness(by_label[claim.better]), correctness(by_label[claim.worse])
        common = [qid for qid in a if qid in b]
        right_a += [a[i] for i in common]
        right_b += [b[i] for i in common]
    n = len(right_a)
    test = mcnemar_exact(right_a, right_b)
    effect = (sum(right_a) - sum(right_b)) / n if n else float("nan")
    return {"claim": claim.text, "sets": tested, "held": held, "positive": positive,
            "questions": n, "effect": effect, **test,
            "pooled_held": n > 0 and effect > 0 and test["p_value"] < alpha}  # fmt: skip


def pooled_accuracy(run_sets: Sequence[Sequence[Run]], label: str) -> tuple[float, int]:
    """The accuracy of the runs labelled ``label`` over several run sets (seeds), every answered
    question counted once, and the number of questions (``nan`` and 0 when there is none)."""
    right = [ok for runs in run_sets for run in runs if run.label == label
             for ok in correctness(run).values()]  # fmt: skip
    return (sum(right) / len(right) if right else float("nan")), len(right)


def across_seeds(claim: Claim, run_sets: Sequence[Sequence[Run]]) -> dict:
    """One claim over several run sets (seeds) with the seeds as the unit: the effect in each,
    their mean, its 95 % t-interval and the one-sided one-sample t-test of a positive mean
    (``low``, ``high`` and ``p_value`` from two seeds on). Training noise is shared by every
    question of a seed, so :func:`pooled`'s McNemar test, which treats the questions as
    independent, overstates the evidence for a claim about training."""
    from scipy import stats

    effects = [r[0]["effect"] for r in (check_claims([claim], runs) for runs in run_sets) if r]
    n = len(effects)
    out: dict = {"claim": claim.text, "seeds": n, "effects": effects,
                 "mean": sum(effects) / n if n else float("nan")}  # fmt: skip
    if n < 2:
        return out
    sem = float(stats.sem(effects))
    half = float(stats.t.ppf(0.975, n - 1)) * sem
    if sem > 0:
        p = float(stats.ttest_1samp(effects, 0.0, alternative="greater").pvalue)
    else:  # every seed the same effect
        p = 0.0 if out["mean"] > 0 else 1.0
    return {**out, "low": out["mean"] - half, "high": out["mean"] + half, "p_value": p}


def default_claims(runs: Sequence[Run], grid: dict | None = None) -> list[Claim]:
    """The claims any run set can test: each model beats the strongest baseline on each
    benchmark, and hard distractors are harder than random ones for each model evaluated on
    both a random-distractor and a hard benchmark of the same questions."""
    grid = grid or layout(runs)
    cells = grid["cells"]
    claims = []
    baselines = [m["name"] for m in grid["models"] if m["baseline"]]
    for model in (m["name"] for m in grid["models"] if not m["baseline"]):
        for bench in grid["benchmarks"]:
            if bench["name"] not in cells[model]:
                continue
            rivals = [b for b in baselines if bench["name"] in cells[b]]
            if rivals:
                best = max(rivals, key=lambda b: cells[b][bench["name"]]["accuracy"])
                claims.append(
                    Claim(
                        f"{model} beats the strongest baseline ({best}) on {bench['name']}",
                        cells[model][bench["name"]]["run"],
                        cells[best][bench["name"]]["run"],
                    )
                )
    randoms = [b["name"] for b in grid["benchmarks"] if b["kind"] == "random"]
    hards = [b["name"] for b in grid["benchmarks"] if b["kind"] == "hard"]
    for model in (m["name"] for m in grid["models"]):
        for easy in randoms:
            for hard in hards:
                if easy in cells[model] and hard in cells[model]:
                    claims.append(
                        Claim(
                            f"{hard} is harder than {easy} for {model}",
                            cells[model][easy]["run"],
                            cells[model][hard]["run"],
                        )
                    )
    return claims
