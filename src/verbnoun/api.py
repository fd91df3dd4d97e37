"""The notebook API: each CLI stage as one Python call, reading and writing the same files.

>>> import verbnoun as lva
>>> kitchen = lva.synth("kitchen", videos=8)                                 # doctest: +SKIP
>>> bench = lva.build_benchmark(kitchen.annotations, "mqa/hard.jsonl",
...                             distractors="prior-hard")                    # doctest: +SKIP
>>> run = lva.eval(bench, model="prior", out="runs/prior",
...                    annotations=kitchen.annotations)                      # doctest: +SKIP
>>> scores = lva.score(run, "runs/random")          # a table in a notebook  # doctest: +SKIP
>>> scores.plot("accuracy.png")                                              # doctest: +SKIP

Every function returns a small object that names its files, so a notebook and the CLI can pick
up each other's results. Heavy libraries (torch, matplotlib) load only when a call needs them.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import verbnoun
from verbnoun.bench.questions import Question, read_questions
from verbnoun.evaluate.score import Run

__all__ = list(verbnoun.API)  # one list of the notebook API, in verbnoun/__init__.py

RunLike = Run | str | Path


@dataclass(frozen=True)
class Kitchen:
    """Where ``synth`` wrote the synthetic kitchen (EK100-schema annotations, chunked videos)."""

    root: Path
    annotations: Path
    videos: Path
    layout: str = "chunks"


@dataclass
class Benchmark:
    """A question file and its manifest, as ``mqa build`` writes them."""

    path: Path
    manifest: dict
    _questions: list[Question] | None = field(default=None, repr=False)

    @property
    def questions(self) -> list[Question]:
        """The questions, read from ``path`` on first use."""
        if self._questions is None:
            self._questions = read_questions(self.path)
        return self._questions

    def stats(self) -> dict:
        """What ``mqa stats --json`` prints: counts, correct letters, distractor sources."""
        from verbnoun.bench.stats import summarize

        return summarize(self.questions)


@dataclass
class Scores:
    """What ``verbnoun score`` prints: a row per run and paired tests on shared questions."""

    runs: list[dict]
    paired: list[dict]

    def plot(self, out: str | Path | None = None) -> bytes:
        """The accuracy bar chart (95% intervals) as PNG bytes; also written to ``out`` if given."""
        from verbnoun.evaluate.report import accuracy_plot
        from verbnoun.fileio import atomic_write_bytes

        png = accuracy_plot(self.runs)
        if out is not None:
            atomic_write_bytes(Path(out), png)
        return png

    def __str__(self) -> str:
        lines = ["run | model | answered | accuracy % | 95% CI | unparsed %"]
        for row in self.runs:
            low, high = row["ci95"]
            lines.append(
                f"{row['run']} | {row['model']} | {row['answered']}/{row['questions']} | "
                f"{100 * row['accuracy']:.1f} | {100 * low:.1f}-{100 * high:.1f} | "
                f"{100 * row['unparsed_rate']:.1f}"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The table as HTML for Jupyter (every string escaped)."""
        head = "".join(
            f"<th>{c}</th>" for c in ("run", "model", "answered", "accuracy %", "95% CI")
        )
        body = []
        for row in self.runs:
            low, high = row["ci95"]
            cells = (
                row["run"],
                row["model"],
                f"{row['answered']}/{row['questions']}",
                f"{100 * row['accuracy']:.1f}",
                f"{100 * low:.1f}-{100 * high:.1f}",
            )
            body.append("".join(f"<td>{html.escape(str(c))}</td>" for c in cells))
        rows = "".join(f"<tr>{r}</tr>" for r in body)
        return f"<table><tr>{head}</tr>{rows}</table>"


def synth(out: str | Path, *, videos: int = 40, seed: int = 0, **options) -> Kitchen:
    """Write the synthetic kitchen into ``out`` (as ``verbnoun synth``)."""
    from verbnoun.data.synth import render_kitchen

    out = Path(out)
    render_kitchen(out, videos=videos, seed=seed, **options)
    return Kitchen(out, out / "annotations", out / "videos")


def build_benchmark(
    annotations: str | Path | None,
    out: str | Path,
    *,
    dataset: str | Path | None = None,
    distractors: str = "random",
    predictions: str | Path | None = None,
    split: str = "validation",
    num_options: int = 5,
    option_text: str = "narration",
    specialist_rule: str = "benchmark",
    seed: int = 0,
) -> Benchmark:
    """Build a multiple-choice benchmark (as ``verbnoun mqa build``); same bytes as the CLI.

    ``annotations``: an EK100 folder or a dataset description YAML; or ``dataset``, a YAML whose
    paths are relative to ``annotations`` (default: its own folder).
    """
    from verbnoun.bench.build import BuildSettings
    from verbnoun.bench.build import build_benchmark as build
    from verbnoun.data.dataset import open_dataset
    from verbnoun.errors import VerbnounError

    settings = BuildSettings(
        split=split,
        distractors=distractors,
        num_options=num_options,
        option_text=option_text,
        seed=seed,
        specialist_rule=specialist_rule,
    )
    source = open_dataset(dataset, annotations)
    if source is None:
        raise VerbnounError("give annotations (an EK100 folder or a YAML) or dataset")
    manifest = build(source, out, settings, predictions)
    return Benchmark(Path(out), manifest)


def eval(
    questions: Benchmark | str | Path | None,
    model: str,
    out: str | Path,
    *,
    videos: str | Path | None = None,
    annotations: str | Path | None = None,
    dataset: str | Path | None = None,
    **options,
) -> Run:
    """Evaluate ``model`` on a question file into run folder ``out`` (as ``verbnoun eval``).

    ``model`` is a name in :data:`verbnoun.evaluate.registry.ADAPTERS` (``random``, ``prior``,
    ``specialist``, ``openai``, ``llavaction``, ``hf``, ...). ``annotations`` is an EK100 folder
    or a dataset description YAML (``dataset`` a YAML whose paths are relative to
    ``annotations``). ``options`` are the CLI's options with underscores: ``layout``,
    ``frames``, ``size``, ``time_instruction``, ``prior_actions``, ``parser``, ``two_stage``,
    ``top_k``, ``open_vocab``, ``answer_set``, ``threshold`` (multi-select questions),
    ``shard``, ``batch_size``, ``workers``, and the model's own, the
    fields of its settings (``seed``; ``predictions``; ``checkpoint``, ``scoring``, ``device``;
    ``api_model``, ``base_url``, ``api_key_env``, ``api_protocol``; ``hf_model``, ``dtype``,
    ``device_map``, ``attn_implementation``, ``hf_frames``, ...; for ``openai`` also ``tries``,
    ``max_wait``, ``first_wait``, ``request_timeout``, ``max_consecutive_failures`` and
    ``price_per_mtok`` as ``"IN,OUT"``). Resumes an existing run. Returns the run read back from
    its files (``Run.metrics``); a shard whose siblings have not finished returns the partial
    run. Questions the endpoint never answered are in ``Run.metrics["coverage"]``.
    """
    from verbnoun.evaluate.job import eval_job, run_eval

    path = questions.path if isinstance(questions, Benchmark) else questions
    job = eval_job(model, out, path, videos=videos, annotations=annotations, dataset=dataset,
                   **options)  # fmt: skip
    run_eval(job)
    return load_run(out, annotations=annotations, dataset=dataset)


def load_run(
    run: RunLike, *, annotations: str | Path | None = None, dataset: str | Path | None = None
) -> Run:
    """Read a run folder back (config, questions with their sha256 checked, predictions);
    ``annotations`` / ``dataset`` add the head/tail and unseen-participant breakdowns."""
    from verbnoun.data.dataset import open_dataset
    from verbnoun.evaluate.score import load_run as load

    if isinstance(run, Run):
        return run
    return load(run, annotations=open_dataset(dataset, annotations))


def score(
    *runs: RunLike | Sequence[RunLike],
    annotations: str | Path | None = None,
    dataset: str | Path | None = None,
) -> Scores:
    """Compare runs (as ``verbnoun score``): accuracy, 95% CI, paired McNemar tests."""
    from verbnoun.evaluate.score import compare

    loaded = [load_run(r, annotations=annotations, dataset=dataset) for r in _flatten(runs)]
    comparison = compare(loaded)
    return Scores(comparison["runs"], comparison["paired"])


def reparse(
    run: RunLike,
    out: str | Path,
    *,
    parser: str | None = None,
    annotations: str | Path | None = None,
    dataset: str | Path | None = None,
) -> Run:
    """Parse a run's stored raw answers again with this version's parser into the new run folder
    ``out`` (as ``verbnoun score --reparse``; no model is asked); returns the new run, whose
    ``reparse.json`` says how many choices changed. ``parser``: ``strict`` or ``original``
    (default: the run's own)."""
    from verbnoun.data.dataset import open_dataset
    from verbnoun.evaluate.reparse import reparse_run

    path = run.path if isinstance(run, Run) else Path(run)
    source = open_dataset(dataset, annotations)
    reparse_run(path, out, parser=parser, annotations=source)
    return load_run(out, annotations=annotations, dataset=dataset)


def show_prompt(run: RunLike, question_id: str) -> dict:
    """What the run's model was sent for one question (as ``verbnoun show-prompt RUN ID
    --json``): ``{"id", "template", "model", "sent"}``, ``sent`` an API request body (frames as
    placeholders) or a local model's prompt text and input ids."""
    from verbnoun.evaluate.prompt_log import show_prompt as shown

    return shown(run.path if isinstance(run, Run) else Path(run), question_id)


def report(
    runs: Sequence[RunLike],
    out: str | Path,
    *,
    videos: str | Path | None = None,
    layout: str = "chunks",
    size: int = 96,
    annotations: str | Path | None = None,
    dataset: str | Path | None = None,
    **options,
) -> Path:
    """Write the static HTML report of ``runs`` (as ``verbnoun report``); returns its path.
    ``options``: ``title``, ``claims`` (:class:`verbnoun.evaluate.findings.Claim`),
    ``page_size``, ``image_format`` (``jpeg`` or ``webp``), ``progress``."""
    from verbnoun.evaluate.report import write_report

    loaded = [load_run(r, annotations=annotations, dataset=dataset) for r in _flatten(runs)]
    frames_of, settings = None, None
    if videos is not None:
        from verbnoun.evaluate.frames import make_frame_source

        frames = loaded[0].config["frames"]
        frames_of = make_frame_source(Path(videos), layout, frames, size)
        settings = {"frames": frames, "size": size, "layout": layout}
    from verbnoun.data.dataset import open_dataset

    names = open_dataset(dataset, annotations) if (dataset or annotations) else None
    return write_report(
        loaded, out, frames_of=frames_of, frame_settings=settings, dataset=names, **options
    )


def _flatten(runs) -> list[RunLike]:
    flat: list[RunLike] = []
    for item in runs:
        if isinstance(item, Run | str | Path):
            flat.append(item)
        else:
            flat.extend(item)
    return flat
