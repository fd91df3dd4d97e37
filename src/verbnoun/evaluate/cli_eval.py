"""``verbnoun eval`` (a typer command): its options become an
:class:`~verbnoun.evaluate.job.EvalJob` and :func:`~verbnoun.evaluate.job.run_eval` runs it.

``--model`` lists the adapters of :mod:`verbnoun.evaluate.registry`; the other choices are the
tuples of the modules that own them. Heavy imports stay inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from verbnoun.cli_options import (
    FirstWaitOpt,
    Layout,
    MaxFailuresOpt,
    MaxWaitOpt,
    RequestTimeoutOpt,
    TriesOpt,
    choice,
    option,
)
from verbnoun.evaluate.answer_sets import ANSWER_SETS
from verbnoun.evaluate.endpoint import MAX_CONSECUTIVE_FAILURES, RetryPolicy
from verbnoun.evaluate.frames import FRAME_CONTROLS
from verbnoun.evaluate.frames import frames_for as frames_for  # its old import path
from verbnoun.evaluate.hf_adapter import DTYPES, FRAMES_AS, MODES
from verbnoun.evaluate.openai_adapter import PROTOCOLS
from verbnoun.evaluate.registry import ADAPTERS
from verbnoun.evaluate.runner import PRIOR_ACTIONS
from verbnoun.interpret.parsing import PARSERS

Scoring = choice("Scoring", MODES)
Parser = choice("Parser", PARSERS)
ApiProtocol = choice("ApiProtocol", PROTOCOLS)
HfDtype = choice("HfDtype", DTYPES)
HfFrames = choice("HfFrames", FRAMES_AS)
PriorActions = choice("PriorActions", PRIOR_ACTIONS)
FramesControl = choice("FramesControl", FRAME_CONTROLS)
AnswerSet = choice("AnswerSet", tuple(ANSWER_SETS))


def models():
    """The registered adapters' names as ``--model`` choices. The annotation below calls it each
    time typer builds the command (annotations are strings until then), so an adapter added to
    the registry is a choice at once."""
    return choice("Model", tuple(ADAPTERS))


QuestionsOpt = option(Path | None, "Question file (.jsonl) from `mqa build`.")
TwoStageOpt = option(
    bool, "Two-stage recognition: options = the specialist's top-K (--predictions)."
)
TopKOpt = option(int, "Options of two-stage questions.", min=2, max=26)
OptionTextOpt = option(str, "Two-stage option wording: narration or official_key.")
VideosOpt = option(Path | None, "Video root folder.")
LayoutOpt = option(Layout, "Video layout under --videos.")
FramesOpt = option(int, "Frames per clip.", min=1)
SizeOpt = option(int | None, "Resize frames to SIZE x SIZE when decoding.")
TimeOpt = option(bool, "Prefix the SPEC 3 time instruction.")
PriorOpt = option(PriorActions, "Prior-actions prompt (SPEC 5b): off, from the ground truth, or from "
                "the model's own earlier answers.")  # fmt: skip
ParserOpt = option(Parser, "strict (ours) or the original release's rule.")
ControlOpt = option(FramesControl, "Control run: each question shown another clip's frames, or "
                  "blank grey frames.")  # fmt: skip
SeedOpt = option(int, "Seed of the random baseline.")
PredictionsOpt = option(Path | None, "Specialist prediction file.")
AnnotationsOpt = option(Path | None, "EK100 annotation folder: breakdowns, prior, row keys.")
DatasetOpt = option(Path | None, "Dataset description (YAML) instead of an EK100 folder (paths "
                  "relative to --annotations when given).")  # fmt: skip
ApiModelOpt = option(str | None, "Model name on the API server.")
BaseUrlOpt = option(str | None, "OpenAI-compatible endpoint URL.")
KeyEnvOpt = option(str, "Environment variable holding the key.")
ConcurrencyOpt = option(int, "Parallel API requests.", min=1)
StructuredOpt = option(bool | None, "Ask for JSON {answer} output (default: on for gpt4o, off for "
                     "video).")  # fmt: skip
ProtocolOpt = option(ApiProtocol, "gpt4o: task as system prompt, frames as images (SPEC 3); video: "
                   "our prompt and one JPEG-sequence video, for a `verbnoun export hf` model "
                   "served by vLLM.")  # fmt: skip
CheckpointOpt = option(Path | None, "Local checkpoint directory (--model llavaction).")
ScoringOpt = option(Scoring, "Local model: letter logits, option likelihood, or generation.")
DeviceOpt = option(str | None, "cpu or cuda (default: cuda if present).")
HfModelOpt = option(str | None, "--model hf: a transformers model directory, or a model id already "
                  "in the local Hugging Face cache (never downloaded).")  # fmt: skip
DtypeOpt = option(HfDtype, "--model hf: weights' dtype (auto: bfloat16 on GPU, else float32).")
DeviceMapOpt = option(str | None, "--model hf: accelerate device map (e.g. auto) instead of "
                    "--device.")  # fmt: skip
AttnOpt = option(str | None, "--model hf: eager, sdpa or flash_attention_2.")
HfFramesOpt = option(HfFrames, "--model hf: frames as one video, as images, or auto.")
BatchOpt = option(int, "Questions per model call.", min=1)
WorkersOpt = option(int, "Frame-decoding threads (0: decode between model calls).", min=0)
ShardOpt = option(str | None, "K/N: this process answers shard K of N.")
OpenVocabOpt = option(bool, "Ask the direct-narration question instead, map each free-text answer "
                    "to the classes of --annotations / --dataset and score top-1 verb, noun and "
                    "action.")  # fmt: skip
EmbeddingOpt = option(Path | None, "--open-vocab: a local text-embedding model (transformers) for "
                    "what the class synonyms miss.")  # fmt: skip
SimilarityOpt = option(float, "--open-vocab: least cosine similarity an embedding match needs.")
ProgressOpt = option(bool, "Show a progress bar.")
AnswerSetOpt = option(AnswerSet, "Multi-select questions: how a reply becomes a set (letters: the "
                     "multi-select parser; free-text: every action of --open-vocab answers; "
                     "threshold: option probabilities >= --threshold).")  # fmt: skip
ThresholdOpt = option(float, "--answer-set threshold: least option probability chosen.")
PriceOpt = option(str | None, "IN,OUT: price per million input/output tokens, for the cost "
                "estimate.")  # fmt: skip


def eval_command(
    model: Annotated[models(), typer.Option(help="Who answers.")],  # type: ignore[valid-type]
    out: Annotated[Path, typer.Option(help="Run directory (created; resumed when it exists).")],
    questions: QuestionsOpt = None,
    two_stage: TwoStageOpt = False,
    top_k: TopKOpt = 20,
    option_text: OptionTextOpt = "narration",
    videos: VideosOpt = None,
    layout: LayoutOpt = Layout.chunks,
    frames: FramesOpt = 8,
    size: SizeOpt = None,
    time_instruction: TimeOpt = True,
    prior_actions: PriorOpt = PriorActions.none,
    parser: ParserOpt = Parser.strict,
    frames_control: ControlOpt = FramesControl.none,
    seed: SeedOpt = 0,
    predictions: PredictionsOpt = None,
    annotations: AnnotationsOpt = None,
    dataset: DatasetOpt = None,
    api_model: ApiModelOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: KeyEnvOpt = "OPENAI_API_KEY",
    concurrency: ConcurrencyOpt = 4,
    structured: StructuredOpt = None,
    api_protocol: ProtocolOpt = ApiProtocol.gpt4o,
    checkpoint: CheckpointOpt = None,
    scoring: ScoringOpt = Scoring.letters,
    device: DeviceOpt = None,
    hf_model: HfModelOpt = None,
    dtype: DtypeOpt = HfDtype.auto,
    device_map: DeviceMapOpt = None,
    attn_implementation: AttnOpt = None,
    hf_frames: HfFramesOpt = HfFrames.auto,
    batch_size: BatchOpt = 8,
    workers: WorkersOpt = 2,
    shard: ShardOpt = None,
    open_vocab: OpenVocabOpt = False,
    answer_set: AnswerSetOpt = AnswerSet.letters,
    threshold: ThresholdOpt = 0.3,
    embedding_model: EmbeddingOpt = None,
    min_similarity: SimilarityOpt = 0.5,
    progress: ProgressOpt = True,
    tries: TriesOpt = RetryPolicy.tries,
    max_wait: MaxWaitOpt = RetryPolicy.max_wait,
    first_wait: FirstWaitOpt = RetryPolicy.first_wait,
    request_timeout: RequestTimeoutOpt = RetryPolicy.request_timeout,
    max_consecutive_failures: MaxFailuresOpt = MAX_CONSECUTIVE_FAILURES,
    price_per_mtok: PriceOpt = None,
) -> None:
    """Evaluate a model on a question file; resumable; writes RUN_DIR/{config,predictions,metrics}.

    Exits with status 3 when some questions failed (the endpoint never answered them): running
    the same command again asks only those."""
    options = {name: getattr(value, "value", value) for name, value in locals().items()}
    from verbnoun.evaluate.job import eval_job, run_eval

    metrics = run_eval(eval_job(**options))  # the options are the job's, name for name
    if metrics is None:
        typer.echo(f"{out}: shard done; other shards still have questions to answer")
        return
    headline = _summary(out, metrics)
    if headline is not None:
        typer.echo(headline)
    _endpoint_summary(out, metrics)


def _summary(out: Path, metrics: dict) -> str | None:
    """The run's headline: Jaccard accuracy (and mAP) of a multi-select run, mapped top-1
    accuracies of an open-vocabulary run, else accuracy with its interval (none when the
    endpoint answered nothing)."""
    if "multilabel" in metrics:
        return multilabel_headline(out, metrics)
    if "open_vocab" in metrics:
        mapped = metrics["open_vocab"]
        return (
            f"{out}: after mapping the free-text answers, top-1 verb {100 * mapped['verb']:.1f}% "
            f"noun {100 * mapped['noun']:.1f}% action {100 * mapped['action']:.1f}% on "
            f"{mapped['n']} clips, unmapped {100 * mapped['unmapped']:.1f}%"
        )
    overall = metrics["overall"]
    if not overall["n"]:
        return None
    low, high = overall["ci95"]
    return (
        f"{out}: accuracy {100 * overall['accuracy']:.1f}% (95% CI {100 * low:.1f}-"
        f"{100 * high:.1f}) on {overall['n']} questions, unparsed "
        f"{100 * overall['unparsed_rate']:.1f}%"
    )


def multilabel_headline(out: Path | str, metrics: dict) -> str | None:
    """``Jaccard 61.0% (95% CI ...) exact 40.0% mAP 70.2% (...) on N clips, unparsed U%``."""
    multi, overall = metrics["multilabel"], metrics["overall"]
    if not multi["n"]:
        return None

    def pct(figure: dict) -> str:
        low, high = figure["ci95"]
        return f"{100 * figure['value']:.1f}% (95% CI {100 * low:.1f}-{100 * high:.1f})"

    ap = f" mAP {pct(multi['map'])}" if multi.get("map") else ""
    return (
        f"{out}: Jaccard accuracy {pct(multi['jaccard'])}, exact match "
        f"{100 * multi['exact_match']['value']:.1f}%{ap} on {multi['n']} clips "
        f"({multi['answer_set']}), unparsed {100 * overall['unparsed_rate']:.1f}%"
    )


def _endpoint_summary(out: Path, metrics: dict) -> None:
    """Print the endpoint's tally (failed by kind, tokens, cost, requests per second); exit
    with status 3 when some questions failed."""
    coverage, usage = metrics.get("coverage", {}), metrics.get("usage")
    throughput = metrics.get("throughput")
    if usage is not None or throughput is not None:
        parts = []
        if usage is not None:
            parts.append(f"{usage['prompt_tokens']} prompt + {usage['completion_tokens']} "
                         f"completion tokens")  # fmt: skip
            if "estimated_cost" in usage:
                parts.append(f"estimated cost {usage['estimated_cost']:.4f}")
        if throughput is not None and throughput.get("requests_per_second") is not None:
            parts.append(f"{throughput['requests_per_second']:.2f} requests/s")
        typer.echo(f"{out}: " + ", ".join(parts))
    if not coverage.get("failed"):
        return
    kinds = ", ".join(f"{kind} {n}" for kind, n in coverage["failed_by_kind"].items())
    over_all = coverage["accuracy_over_all"]
    typer.echo(
        f"{out}: {coverage['answered']} answered, {coverage['failed']} failed ({kinds}); "
        f"accuracy over all asked {100 * over_all:.1f}%. Run the same command again to retry "
        "the failed ones.",
        err=True,
    )
    raise typer.Exit(3)


def make_adapter(model: str, **options):
    """Build adapter ``model`` from flat options (``annotations`` and ``dataset`` name the data
    set): :func:`verbnoun.evaluate.registry.build_adapter`, kept for callers of this old name;
    nothing in the package calls it."""
    from verbnoun.evaluate.adapters import DataSettings
    from verbnoun.evaluate.registry import build_adapter, settings_for

    data = DataSettings(options.pop("annotations", None), options.pop("dataset", None))
    return build_adapter(model, settings_for(model, options), data)
