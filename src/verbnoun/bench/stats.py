"""What a benchmark contains: counts, answer-letter balance, distractor sources and hardness."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from verbnoun.bench.prompts import LETTERS
from verbnoun.bench.questions import Question
from verbnoun.data.ek100 import parse_action_id


def summarize(questions: Sequence[Question]) -> dict:
    """A JSON-ready summary of a question set.

    ``sharing`` counts distractors by what they share with the correct action: the verb, the noun,
    or neither (no distractor shares both, since options have distinct action ids); distractors
    of single-label questions are counted as ``not_applicable``.
    ``letter_chi2`` is Pearson's chi-square of the correct letters against a uniform spread
    (degrees of freedom: options - 1), a quick check that the answer position gives nothing away.
    """
    n_options = sorted({len(q.options) for q in questions})
    letters = Counter(q.answer_letter for q in questions)
    sources = Counter(o.source for q in questions for o in q.options if o.source != "ground_truth")
    text_sources = Counter(o.text_source for q in questions for o in q.options)
    sharing = Counter()
    single = 0  # distractors of single-label questions: nothing to share
    for q in questions:
        if q.single_label:
            single += len(q.options) - len(q.correct_indices)
            continue
        verb, noun = parse_action_id(q.action_id)
        for index, option in enumerate(q.options):
            if index in q.correct_indices:
                continue
            v, n = parse_action_id(option.action_id)
            sharing["verb" if v == verb else "noun" if n == noun else "neither"] += 1
    distractors = sum(sharing.values())
    sharing_summary = {
        key: {"count": sharing[key], "fraction": round(sharing[key] / max(distractors, 1), 4)}
        for key in ("verb", "noun", "neither")
    }
    if single:  # single-label data sets: verb / noun sharing does not apply
        sharing_summary["not_applicable"] = {"count": single, "fraction": None}
    chi2 = None
    if len(n_options) == 1:
        expected = len(questions) / n_options[0]
        chi2 = sum((letters.get(L, 0) - expected) ** 2 / expected for L in LETTERS[: n_options[0]])
    multi = [q for q in questions if q.multi_select]
    summary = {
        "questions": len(questions),
        "videos": len({q.video_id for q in questions}),
        "participants": len({q.participant_id for q in questions}),
        "distinct_actions": len({q.action_id for q in questions}),
        "options_per_question": n_options,
        "mean_duration_s": round(sum(q.duration for q in questions) / len(questions), 3),
        "with_prior_actions": sum(1 for q in questions if q.prior_actions),
        "correct_letters": {L: letters[L] for L in LETTERS[: max(n_options)]},
        "letter_chi2": None if chi2 is None else round(chi2, 3),
        "distractor_sources": dict(sorted(sources.items())),
        "option_text_sources": dict(sorted(text_sources.items())),
        "distractors_sharing": sharing_summary,
    }
    if multi:  # several labels per segment (other benchmarks' summaries stay as they were)
        labels = Counter(len(q.action_ids) for q in multi)
        summary["multi_select"] = {
            "questions": len(multi),
            "labels_per_question": {str(n): labels[n] for n in sorted(labels)},
            "true_options_shown": sum(len(q.answer_indices) for q in multi),
        }
    return summary


def render(summary: dict, title: str) -> None:
    """Print a summary as rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    overview = Table(title=title, show_header=False)
    for key in (
        "questions", "videos", "participants", "distinct_actions", "options_per_question",
        "mean_duration_s", "with_prior_actions", "letter_chi2",
    ):  # fmt: skip
        overview.add_row(key.replace("_", " "), str(summary[key]))
    console.print(overview)
    for name, column in (
        ("correct_letters", "letter"),
        ("distractor_sources", "source"),
        ("option_text_sources", "text from"),
    ):
        table = Table(title=name.replace("_", " "))
        table.add_column(column)
        table.add_column("count", justify="right")
        table.add_column("share", justify="right")
        total = sum(summary[name].values()) or 1
        for key, value in summary[name].items():
            table.add_row(key, str(value), f"{100 * value / total:.1f}%")
        console.print(table)
    sharing = Table(title="distractors sharing with the answer")
    sharing.add_column("shares")
    sharing.add_column("count", justify="right")
    sharing.add_column("share", justify="right")
    for key, value in summary["distractors_sharing"].items():
        share = "n/a" if value["fraction"] is None else f"{100 * value['fraction']:.1f}%"
        sharing.add_row(key.replace("_", " "), str(value["count"]), share)
    console.print(sharing)
