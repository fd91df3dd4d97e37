"""The figures of a run's ``metrics.json``, computed from its questions and prediction records.

:func:`compute_metrics` is the one summary every path writes (``verbnoun eval`` when a run is
complete, ``verbnoun score``, ``score --reparse``): accuracy with its bootstrap interval and
unparsed count, per verb / noun (or per action) breakdowns and mean class accuracy, the EK100
top-1 of the chosen option, coverage of failed questions, token usage and, given a data set,
head vs. tail classes and seen vs. unseen participants. Open-vocabulary runs add
:func:`open_vocab_metrics`, multi-select runs :func:`multilabel_metrics`. It reads nothing but
the data set and writes nothing; the figures themselves are :mod:`verbnoun.evaluate.metrics`'
and :mod:`verbnoun.evaluate.multilabel`'s.
"""

from __future__ import annotations

from collections.abc import Sequence

from verbnoun.bench.questions import Question
from verbnoun.evaluate.answer_sets import option_probabilities
from verbnoun.evaluate.metrics import (
    accuracy_summary,
    coverage_summary,
    grouped_accuracy,
    mean_class_accuracy,
    open_vocab_top1,
    recognition_top1,
    usage_summary,
)


def multilabel_metrics(rows: Sequence[tuple[Question, dict]], answer_set: str | None) -> dict:
    """The multi-label figures of multi-select records (:mod:`verbnoun.evaluate.multilabel`):
    an unparsed reply is an empty set; mAP from the option probabilities when every record has
    scores (a class not among a question's options ranks last for that clip);
    ``labels_among_options``: the mean share of a clip's true labels shown as options (below 1
    in two-stage runs: the specialist's top-K missed some)."""
    from verbnoun.evaluate.multilabel import multilabel_summary

    scores = [option_probabilities(q, p.get("scores")) for q, p in rows]
    summary = multilabel_summary(
        [p.get("labels") or () for _, p in rows], [q.true_action_ids for q, _ in rows],
        scores if rows and all(s is not None for s in scores) else None,
    )  # fmt: skip
    # the ceiling of a set reading: the share of each clip's true labels shown as options
    shown = [len({o.action_id for o in q.options} & set(q.true_action_ids))
             / len(q.true_action_ids) for q, _ in rows]  # fmt: skip
    summary["labels_among_options"] = sum(shown) / len(shown) if shown else float("nan")
    return {"answer_set": answer_set, **summary}


def open_vocab_metrics(rows: Sequence[tuple[Question, dict]]) -> dict:
    """Top-1 verb, noun and action of mapped answers, the unmapped share and the methods."""
    mapped = open_vocab_top1(
        [(p["verb_class"], p["noun_class"]) for _, p in rows],
        [(q.verb_class, q.noun_class) for q, _ in rows],
    )
    methods: dict[str, int] = {}
    for _, p in rows:
        methods[p["method"]] = methods.get(p["method"], 0) + 1
    confidence = [p["confidence"] for _, p in rows]
    return {
        **mapped,
        "methods": dict(sorted(methods.items())),
        "mean_confidence": sum(confidence) / len(confidence) if confidence else float("nan"),
    }


def compute_metrics(
    questions: Sequence[Question],
    predictions: dict[str, dict],
    *,
    annotations=None,
    open_vocab: bool = False,
    failed: dict[str, dict] | None = None,
    price_per_mtok: tuple[float, float] | None = None,
    answer_set: str | None = None,
) -> dict:
    """Accuracy with its bootstrap interval, unparsed rate, per verb / noun breakdowns, and,
    given a data set (an EK100 annotation folder, a description YAML or an open data set), head
    vs. tail classes and seen vs. unseen participants where the data set names them.

    ``open_vocab``: the predictions are mapped free-text answers (no options): ``overall`` is
    the action top-1, its ``unparsed`` counts the answers that could not be mapped, and
    ``open_vocab`` holds top-1 verb, noun and action after mapping and the unmapped share.

    Single-label questions (one action class, no verb/noun split) get ``per_action`` instead of
    ``per_verb`` / ``per_noun`` (which are ``None``: not applicable), and ``labels: "action"``.

    ``failed``: the failed records of the questions an endpoint could not answer; they are not
    in any accuracy above, and ``coverage`` counts them (by kind) and gives the accuracy over
    the answered and over all asked. ``usage``: the endpoint's token counts summed over the
    records (estimated cost with ``price_per_mtok``), when the records have them.

    Multi-select questions: ``overall`` is the exact-match accuracy (its ``unparsed``: replies
    read as no set) and ``multilabel`` holds Jaccard accuracy, per-class figures and, when every
    record has option scores, mAP (:func:`multilabel_metrics`; ``answer_set``: the run's).
    """
    rows = [(q, predictions[q.id]) for q in questions if q.id in predictions]
    multi = any(q.multi_select for q, _ in rows)
    failed = failed or {}
    failed_rows = [failed[q.id] for q in questions if q.id in failed and q.id not in predictions]
    correct = [bool(p["correct"]) for _, p in rows]
    unparsed = sum((p["labels"] if "labels" in p else p["choice"]) is None for _, p in rows)
    single = bool(rows) and all(q.single_label for q, _ in rows)
    chosen = [
        q.options[p["choice"]].action_id if p["choice"] is not None else "-:-" for q, p in rows
    ]
    metrics: dict = {
        "overall": accuracy_summary(correct, unparsed),
        # EK100 top-1 of the chosen option's action (two-stage recognition), and its ceiling:
        # how often the truth was among the options at all
        "recognition": recognition_top1(chosen, [q.action_id for q, _ in rows]),
        "truth_among_options": sum(q.answer_index >= 0 for q, _ in rows) / max(len(rows), 1),
        "coverage": coverage_summary(len(questions), correct, [r["failed"] for r in failed_rows]),
    }
    usage = usage_summary([p for _, p in rows] + failed_rows, price_per_mtok)
    if usage is not None:
        metrics["usage"] = usage
    if single:
        per_action = grouped_accuracy((q.action_class, p["correct"]) for q, p in rows)
        metrics.update(
            labels="action",
            per_verb=None,
            per_noun=None,
            per_action=per_action,
            mean_class_accuracy={
                "verb": None, "noun": None, "action": mean_class_accuracy(per_action)
            },
        )  # fmt: skip
    else:
        per_verb = grouped_accuracy((q.verb_class, p["correct"]) for q, p in rows)
        per_noun = grouped_accuracy((q.noun_class, p["correct"]) for q, p in rows)
        metrics.update(
            per_verb=per_verb,
            per_noun=per_noun,
            mean_class_accuracy={
                "verb": mean_class_accuracy(per_verb),
                "noun": mean_class_accuracy(per_noun),
            },
        )
    if multi:
        metrics["multilabel"] = multilabel_metrics(rows, answer_set)
        del metrics["recognition"]  # top-1 of one chosen option: not what a set answers
        if open_vocab:
            del metrics["truth_among_options"]  # no options were shown
    elif open_vocab:  # no options were shown: no chosen option, no truth among options
        mapped = open_vocab_metrics(rows)
        metrics["overall"] = accuracy_summary(correct, mapped["unmapped_count"])
        metrics["open_vocab"] = mapped
        del metrics["recognition"], metrics["truth_among_options"]
    if annotations is not None:
        from verbnoun.data.dataset import as_dataset

        dataset = as_dataset(annotations)
        if single:
            tail_actions = getattr(dataset, "tail_actions", lambda: None)()
            if tail_actions is not None:
                metrics["head_tail"] = grouped_accuracy(
                    ("tail" if q.action_class in tail_actions else "head", p["correct"])
                    for q, p in rows
                )
        else:
            tails = dataset.tail_classes()  # type: ignore[union-attr]
            if tails is not None:
                tail_verbs, tail_nouns = tails
                metrics["head_tail"] = grouped_accuracy(
                    (
                        "tail"
                        if q.verb_class in tail_verbs or q.noun_class in tail_nouns
                        else "head",
                        p["correct"],
                    )
                    for q, p in rows
                )
        unseen = dataset.unseen_participants("validation")  # type: ignore[union-attr]
        if unseen is not None:
            metrics["participants"] = grouped_accuracy(
                ("unseen" if q.participant_id in unseen else "seen", p["correct"]) for q, p in rows
            )
    return metrics
