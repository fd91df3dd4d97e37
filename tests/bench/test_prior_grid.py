"""prior-grid distractors (verbnoun.bench.prior_grid): the design checked against a brute-force
enumeration of its grids, the sampler against the design, the grids' shape, and the balance the
blind audit measures on the synthetic kitchen and on the real EK100 annotations."""

from __future__ import annotations

import collections
import itertools
import json
import math
import random
from types import SimpleNamespace

import pytest

from verbnoun.bench.audit import audit_questions
from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.bench.prior_grid import NAME, VERSION, PriorGridDistractors
from verbnoun.bench.questions import read_questions
from verbnoun.cli import main
from verbnoun.data.annotations import ActionVocabulary
from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations


def vocabulary(counts: dict[str, int]) -> ActionVocabulary:
    return ActionVocabulary.from_counts(
        {a: collections.Counter({f"text {a}": c}) for a, c in counts.items()}, {}
    )


def small(verbs: int, nouns: int, missing: int, seed: int) -> dict[str, int]:
    """Segment counts of a small verb x noun vocabulary with ``missing`` combinations absent."""
    rng = random.Random(seed)
    cells = [f"{v}:{n}" for v in range(verbs) for n in range(nouns)]
    rng.shuffle(cells)
    return {a: rng.randint(2, 9) for a in cells[missing:]}


def grids(actions: set[str], k: int) -> list[frozenset[str]]:
    """Every grid of ``k`` options, enumerated from the definition: 2 rows x ceil(k/2) columns
    (rows verbs, or rows nouns), one cell left out when k is odd, every cell an action. A grid
    of both orientations (k = 3, 4) is listed twice, as the design counts it."""
    cells = {tuple(int(x) for x in a.split(":")) for a in actions}
    verbs, nouns = sorted({v for v, _ in cells}), sorted({n for _, n in cells})
    m = math.ceil(k / 2)
    found = []
    for transposed in (False, True):
        rows, columns = (nouns, verbs) if transposed else (verbs, nouns)
        for pair in itertools.combinations(rows, 2):
            for chosen in itertools.combinations(columns, m):
                full = [(r, c) for r in pair for c in chosen]
                for hole in full if k % 2 else [None]:
                    grid = [(c, r) if transposed else (r, c) for r, c in full if (r, c) != hole]
                    if all(cell in cells for cell in grid):
                        found.append(frozenset(f"{v}:{n}" for v, n in grid))
    return found


def design_sets(strategy: PriorGridDistractors, k: int) -> dict[frozenset[str], float]:
    """Every option set of the fitted design and its (unnormalised) probability."""
    design = strategy.design(k)
    weight = {a: design.weights[i] for i, a in enumerate(strategy.actions)}
    sets: dict[frozenset[str], float] = collections.Counter()
    for grid in grids({a for a in strategy.actions if weight[a] > 0}, k):
        sets[grid] += math.prod(weight[a] for a in grid)
    if design.free:
        pool = [a for a in strategy.actions if weight[a] > 0]
        for free in itertools.combinations(pool, k):
            sets[frozenset(free)] += design.free * math.prod(weight[a] for a in free)
    return sets


CASES = [((4, 5, 4, 2), 3), ((4, 5, 4, 2), 5), ((3, 4, 0, 0), 4)]


@pytest.mark.parametrize(("shape", "k"), CASES, ids=["4x5 K=3", "4x5 K=5", "3x4 K=4 free sets"])
def test_every_option_is_equally_likely_the_answer_given_the_options(shape, k):
    """Bayes over the enumerated design: P(answer = x | options) = 1/K for every option set."""
    counts = small(*shape)
    strategy = PriorGridDistractors(vocabulary(counts), counts)
    design = strategy.design(k)
    assert design.max_error < 1e-3  # the fit converged on these small vocabularies
    sets = design_sets(strategy, k)
    if shape == (3, 4, 0, 0):
        assert design.free > 0 and any(not _is_grid(s) for s in sets)
    weight = {a: design.weights[i] for i, a in enumerate(strategy.actions)}
    mass = collections.Counter()  # Z_x: the sets holding x, x's own weight left out
    for options, p in sets.items():
        for x in options:
            mass[x] += p / weight[x]
    total = sum(counts.values())
    worst = 0.0
    for options, p in sets.items():
        # P(x, options) = frequency(x) * P(options | x) = frequency(x) * p / (weight(x) Z_x)
        joint = {x: counts[x] / total * p / (weight[x] * mass[x]) for x in options}
        norm = sum(joint.values())
        worst = max(worst, max(abs(k * j / norm - 1) for j in joint.values()))
    assert worst < 0.01


def _is_grid(options: frozenset[str]) -> bool:
    verbs = {a.split(":")[0] for a in options}
    nouns = {a.split(":")[1] for a in options}
    return min(len(verbs), len(nouns)) == 2


@pytest.mark.parametrize(("shape", "k"), CASES, ids=["4x5 K=3", "4x5 K=5", "3x4 K=4 free sets"])
def test_the_sampler_draws_option_sets_as_the_design_says(shape, k):
    counts = small(*shape)
    strategy = PriorGridDistractors(vocabulary(counts), counts)
    truth = max(counts, key=counts.get)
    sets = {s: p for s, p in design_sets(strategy, k).items() if truth in s}
    norm = sum(sets.values())
    draws = 4000
    seen = collections.Counter()
    segment = SimpleNamespace(action_id=truth)
    for i in range(draws):
        chosen = strategy.choose(segment, k, random.Random(f"draw-{i}"))
        assert len(chosen) == k - 1 and truth not in {d.action_id for d in chosen}
        seen[frozenset([truth, *(d.action_id for d in chosen)])] += 1
    assert set(seen) <= set(sets)
    for options, p in sets.items():
        expected = p / norm
        assert abs(seen[options] / draws - expected) < 4 * math.sqrt(expected / draws) + 0.003


def test_single_label_uses_free_sets_balanced_on_frequency():
    counts = {str(i): c for i, c in enumerate([10, 9, 6, 4, 3, 2, 2, 1])}  # K p(x) <= 1
    strategy = PriorGridDistractors(vocabulary(counts), counts)
    k = 3
    design = strategy.design(k)
    assert design.max_error < 1e-3
    weight = dict(zip(strategy.actions, design.weights, strict=True))
    mass = collections.Counter()
    for options in itertools.combinations(counts, k):
        for x in options:
            mass[x] += math.prod(weight[a] for a in options if a != x)
    ratio = [counts[x] / (weight[x] * mass[x]) for x in counts]
    assert max(ratio) / min(ratio) < 1.01  # so every answer is equally likely given its options
    chosen = strategy.choose(SimpleNamespace(action_id="0"), k, random.Random(1))
    assert {d.source for d in chosen} == {f"{NAME}:free"} and len(chosen) == 2


# ----------------------------------------------------------------------------- real builds


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory):
    """A kitchen large enough for the audit to have power: train and validation benchmarks."""
    root = tmp_path_factory.mktemp("grid")
    annotations = write_kitchen_annotations(root / "a", kitchen_script(160, 0))
    files = {"annotations": annotations}
    for strategy in ("prior-hard", NAME):
        for split in ("train", "validation"):
            path = root / f"{split}-{strategy}.jsonl"
            build_benchmark(annotations, path, BuildSettings(split=split, distractors=strategy))
            files[f"{split}-{strategy}"] = path
    return files


@pytest.mark.slow
def test_kitchen_options_form_grids_and_the_manifest_names_the_rule(kitchen):
    questions = read_questions(kitchen[f"validation-{NAME}"])
    kinds = collections.Counter()
    for q in questions:
        sources = {o.source for o in q.options if o.source != "ground_truth"}
        actions = [o.action_id for o in q.options]
        if sources == {f"{NAME}:free"}:
            kinds["free"] += 1
            continue
        assert sources <= {f"{NAME}:verb", f"{NAME}:noun", f"{NAME}:other"}, sources
        kinds["grid"] += 1
        verbs = collections.Counter(a.split(":")[0] for a in actions)
        nouns = collections.Counter(a.split(":")[1] for a in actions)
        rows, columns = (verbs, nouns) if len(verbs) == 2 else (nouns, verbs)
        assert len(rows) == 2 and len(columns) == 3  # 2 x 3 with one cell left out
        assert sorted(rows.values()) == [2, 3] and sorted(columns.values()) == [1, 2, 2]
    assert kinds["grid"] > kinds["free"] > 0
    manifest = json.loads(kitchen[f"validation-{NAME}"].with_name(
        f"validation-{NAME}.manifest.json").read_text())  # fmt: skip
    rule = manifest["distractor_rule"]
    assert (rule["strategy"], rule["version"]) == (NAME, VERSION)
    assert rule["fit"]["frequencies"] == "segments"
    assert 0 < rule["fit"]["free_set_share"] < 0.5 and rule["fit"]["inclusion_error"] < 0.03
    old = json.loads(kitchen["validation-prior-hard"].with_name(
        "validation-prior-hard.manifest.json").read_text())  # fmt: skip
    assert "distractor_rule" not in old  # prior-hard's manifests stay as they were


@pytest.mark.slow
def test_kitchen_audit_is_at_chance_for_prior_grid_not_for_prior_hard(kitchen):
    grid = read_questions(kitchen[f"validation-{NAME}"])
    for train in (read_questions(kitchen[f"train-{NAME}"]), None):
        audit = audit_questions(grid, train)
        gains = {rule: result["gain"] for rule, result in audit["rules"].items()}
        assert all(abs(g) < 0.05 for g in gains.values()), (audit["train"]["mode"], gains)
    hard = audit_questions(read_questions(kitchen["validation-prior-hard"]),
                           read_questions(kitchen["train-prior-hard"]))  # fmt: skip
    assert hard["rules"]["overlap"]["accuracy"] > 0.99


@pytest.mark.slow
def test_builds_are_deterministic_in_the_seed(kitchen, tmp_path, capsys):
    build = ["mqa", "build", "--annotations", str(kitchen["annotations"]), "--distractors", NAME]
    for seed, name in ((0, "a"), (0, "b"), (1, "c")):
        assert main([*build, "--seed", str(seed), "--out", str(tmp_path / f"{name}.jsonl")]) == 0
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.jsonl").read_bytes() == kitchen[f"validation-{NAME}"].read_bytes()
    assert (tmp_path / "a.jsonl").read_bytes() != (tmp_path / "c.jsonl").read_bytes()
    capsys.readouterr()


def test_sft_build_offers_prior_grid(kitchen, tmp_path):
    out = tmp_path / "sft"
    assert main(["sft", "build", "--annotations", str(kitchen["annotations"]), "--out", str(out),
                 "--tasks", "mqa", "--distractors", NAME]) == 0  # fmt: skip
    manifest = json.loads((out / "sft.manifest.json").read_text())
    assert manifest["mqa_distractors"]["strategy"] == NAME
    assert "grid" in manifest["mqa_distractors"]["rule"]
    # the records hold the train split's prior-grid questions (same seed, same options)
    questions = {q.id: q for q in read_questions(kitchen[f"train-{NAME}"])}
    for line in (out / "mqa.jsonl").read_text().splitlines()[:20]:
        record = json.loads(line)
        q = questions[record["id"].removeprefix("mqa:")]
        assert record["conversations"][1]["value"] == q.target()


@pytest.mark.slow
def test_real_ek100_validation_is_at_chance_for_every_blind_rule(ek100_dir, tmp_path):
    out = tmp_path / "validation-prior-grid.jsonl"
    manifest = build_benchmark(ek100_dir, out, BuildSettings(distractors=NAME))
    assert manifest["counts"]["questions"] == 9668
    fit = manifest["distractor_rule"]["fit"]
    assert fit["inclusion_error"] < 0.03
    questions = read_questions(out)
    sharing = manifest["counts"]["distractors_sharing"]
    assert sharing["verb"]["fraction"] + sharing["noun"]["fraction"] > 0.5  # still hard options
    audit = audit_questions(questions)
    gains = {rule: result["gain"] for rule, result in audit["rules"].items()}
    assert all(abs(g) < 0.05 for g in gains.values()), gains
