"""``verbnoun eval`` and ``verbnoun score`` (typer commands; heavy imports stay inside)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from verbnoun.data.cli_video import Layout
from verbnoun.errors import VerbnounError
from verbnoun.evaluate.endpoint import MAX_CONSECUTIVE_FAILURES, RetryPolicy

# how every OpenAI-compatible call retries (eval, sft captions); defaults from RetryPolicy
TriesOpt = Annotated[
    int,
    typer.Option(min=1, help="OpenAI-compatible endpoint: tries per request (transient faults)."),
]
MaxWaitOpt = Annotated[
    float, typer.Option(min=0, help="Endpoint: seconds one request may wait between tries, in all.")
]
FirstWaitOpt = Annotated[
    float, typer.Option(min=0, help="Endpoint: first backoff in seconds (doubles, jittered).")
]
RequestTimeoutOpt = Annotated[
    float, typer.Option(min=0.001, help="Endpoint: seconds one try may take.")
]
MaxFailuresOpt = Annotated[
    int,
    typer.Option(
        min=0,
        help="Endpoint: stop (keeping everything) after N failed requests in a row (0: never).",
    ),
]


class Model(StrEnum):
    random = "random"
    specialist = "specialist"
    prior = "prior"
    openai = "openai"
    llavaction = "llavaction"
    hf = "hf"


class Scoring(StrEnum):
    letters = "letters"
    text = "text"
    generate = "generate"


class Parser(StrEnum):
    strict = "strict"
    original = "original"


class ApiProtocol(StrEnum):
    gpt4o = "gpt4o"
    video = "video"


class HfDtype(StrEnum):
    auto = "auto"
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


class HfFrames(StrEnum):
    auto = "auto"
    video = "video"
    images = "images"


def _hf_options(model: str, hf_model, dtype, device_map, attn_implementation, hf_frames) -> dict:
    """The ``--model hf`` options (none for other models, so their adapters never see them)."""
    if model != "hf":
        return {}
    return {"hf_model": hf_model, "dtype": dtype, "device_map": device_map,
            "attn_implementation": attn_implementation, "hf_frames": hf_frames}  # fmt: skip


class PriorActions(StrEnum):
    none = "none"
    ground_truth = "ground_truth"
    model = "model"


class FramesControl(StrEnum):
    none = "none"
    other_clip = "other-clip"
    blank = "blank"


def make_adapter(
    model: str,
    *,
    seed: int = 0,
    predictions: Path | None = None,
    annotations: Path | None = None,
    split: str = "validation",
    dataset: Path | None = None,
    api_model: str | None = None,
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    concurrency: int = 4,
    structured: bool | None = None,
    api_protocol: str = "gpt4o",
    retry=None,
    checkpoint: Path | None = None,
    scoring: str = "letters",
    device: str | None = None,
    hf_model: str | None = None,
    dtype: str = "auto",
    device_map: str | None = None,
    attn_implementation: str | None = None,
    hf_frames: str = "auto",
):
    """Build the adapter named ``model`` from command-line options."""
    from verbnoun.evaluate import adapters

    if model == "random":
        return adapters.RandomAdapter(seed)
    if model == "specialist":
        if predictions is None:
            raise VerbnounError("--model specialist needs --predictions FILE")
        return adapters.SpecialistAdapter(
            _ranked_by_narration_id(predictions, annotations, split, dataset), predictions.name
        )
    if model == "prior":
        from verbnoun.data.dataset import open_dataset

        source = open_dataset(dataset, annotations)
        if source is None:
            raise VerbnounError(
                "--model prior needs --annotations DIR or --dataset FILE.yaml (training "
                "frequencies)"
            )
        vocabulary = source.action_vocabulary(("train",))
        frequency = {a: vocabulary.frequency(a) for a in vocabulary.actions}
        name = (dataset or annotations).name  # type: ignore[union-attr]
        return adapters.PriorAdapter(frequency, f"{name}:train")
    if model == "openai":
        if not api_model:
            raise VerbnounError("--model openai needs --api-model NAME (e.g. gpt-4o)")
        from verbnoun.evaluate.openai_adapter import OpenAIAdapter

        return OpenAIAdapter(
            api_model,
            base_url=base_url,
            api_key_env=api_key_env,
            concurrency=concurrency,
            structured=structured,
            protocol=api_protocol,
            retry=retry,
        )
    if model == "llavaction":
        if checkpoint is None:
            raise VerbnounError("--model llavaction needs --checkpoint DIR")
        import os

        from verbnoun.evaluate.local_adapter import LlavactionAdapter

        if device is None and "LOCAL_RANK" in os.environ:  # under torchrun: one GPU per process
            import torch

            if torch.cuda.is_available():
                device = f"cuda:{os.environ['LOCAL_RANK']}"
        return LlavactionAdapter(checkpoint, mode=scoring, device=device)
    if model == "hf":
        if not hf_model:
            raise VerbnounError("--model hf needs --hf-model DIR_OR_ID")
        from verbnoun.evaluate.hf_adapter import HfAdapter, HfSettings

        return HfAdapter(
            HfSettings(
                str(hf_model), mode=scoring, dtype=dtype, device=_rank_device(device),
                device_map=device_map, attn_implementation=attn_implementation,
                frames_as=hf_frames,
            )
        )  # fmt: skip
    raise VerbnounError(f"unknown model {model!r}")


def _rank_device(device: str | None) -> str | None:
    """``device``, or under torchrun with CUDA one GPU per process (``cuda:LOCAL_RANK``)."""
    import os

    if device is None and "LOCAL_RANK" in os.environ:
        import torch

        if torch.cuda.is_available():
            return f"cuda:{os.environ['LOCAL_RANK']}"
    return device


def _ranked_by_narration_id(
    predictions: Path, annotations: Path | None, split: str, dataset: Path | None = None
) -> dict[str, list[str]]:
    from verbnoun.bench.predictions import load_predictions
    from verbnoun.data.dataset import open_dataset

    folder = open_dataset(dataset, annotations)
    if folder is None:
        loaded = load_predictions(predictions)
        if loaded.format == "original":
            raise VerbnounError(
                f"{predictions}: keyed by CSV row; give --annotations DIR to map rows to ids"
            )
        return loaded.by_key
    actions = folder.action_classes()
    if actions is not None:  # single-label: action ids are class ids
        loaded = load_predictions(predictions, num_actions=len(actions))
    else:
        loaded = load_predictions(
            predictions, num_verbs=len(folder.verbs()), num_nouns=len(folder.nouns())
        )
    segments = folder.segments(split)
    loaded.check_fits(segments)  # a row or id outside the split: the file is for another CSV
    return {s.narration_id: loaded.ranked(s) for s in segments if loaded.key_of(s) in loaded.by_key}


def _two_stage_questions(
    out: Path,
    predictions: Path | None,
    annotations: Path | None,
    top_k: int,
    option_text: str,
    seed: int,
    split: str = "validation",
    dataset: Path | None = None,
) -> Path:
    """Write the two-stage question file of a run (deterministic, so a resumed run matches)."""
    from verbnoun.data.dataset import open_dataset

    folder = open_dataset(dataset, annotations)
    if predictions is None or folder is None:
        raise VerbnounError(
            "--two-stage needs --predictions FILE and --annotations DIR (or --dataset FILE.yaml)"
        )
    from verbnoun.bench.build import OptionTexts, build_two_stage_questions
    from verbnoun.bench.predictions import load_predictions
    from verbnoun.bench.questions import write_questions

    if option_text not in ("narration", "official_key"):
        raise VerbnounError(f"unknown option text {option_text!r}")
    if folder.single_label:
        raise VerbnounError("--two-stage is not supported for single-label data sets yet")
    verbs, nouns = folder.verbs(), folder.nouns()
    loaded = load_predictions(predictions, num_verbs=len(verbs), num_nouns=len(nouns))
    texts = OptionTexts.of(folder, folder.action_vocabulary(), option_text)
    segments = folder.segments(split, require_labels=True)
    loaded.check_fits(segments)
    built = build_two_stage_questions(segments, loaded, texts, top_k=top_k, seed=seed)
    path = out / f"two-stage-top{top_k}.jsonl"
    write_questions(path, built)
    return path


def run_eval(
    model: str,
    out: Path,
    questions: Path | None = None,
    *,
    two_stage: bool = False,
    top_k: int = 20,
    option_text: str = "narration",
    videos: Path | None = None,
    layout: str = "chunks",
    frames: int = 8,
    size: int | None = None,
    time_instruction: bool = True,
    prior_actions: str = "none",
    parser: str = "strict",
    frames_control: str = "none",
    annotations: Path | None = None,
    dataset: Path | None = None,
    open_vocab: bool = False,
    embedding_model: Path | None = None,
    min_similarity: float = 0.5,
    shard: str | None = None,
    batch_size: int = 8,
    workers: int = 2,
    progress: bool = False,
    max_consecutive_failures: int = MAX_CONSECUTIVE_FAILURES,
    price_per_mtok: tuple[float, float] | None = None,
    **model_options,
) -> dict | None:
    """``verbnoun eval`` as a function: the run's metrics, or ``None`` when other shards of the
    run still have questions. ``model_options`` go to :func:`make_adapter` (``seed``,
    ``predictions``, ``api_model``, ``checkpoint``, ``scoring``, ``device``, ``retry`` (a
    :class:`~verbnoun.evaluate.endpoint.RetryPolicy`), ...)."""
    from verbnoun.evaluate.runner import EvalSettings, Shard, run_evaluation

    settings = EvalSettings(
        frames=frames,
        size=size,
        time_instruction=time_instruction,
        prior_actions=prior_actions,
        parser=parser,
        frames_control=frames_control,
    )
    scoring = model_options.get("scoring", "letters")
    device = model_options.get("device")
    mapper = None  # checked before a model is loaded
    if open_vocab:
        mapper = _open_vocab_mapper(
            model, scoring, two_stage, dataset, annotations, embedding_model, min_similarity,
            device,
        )  # fmt: skip
    from verbnoun.progress import Heartbeat

    with Heartbeat(f"eval: loading model {model}", enabled=progress):  # no silent minutes in a log
        adapter = make_adapter(model, annotations=annotations, dataset=dataset, **model_options)
    if two_stage:
        questions = _two_stage_questions(
            out, model_options.get("predictions"), annotations, top_k, option_text,
            model_options.get("seed", 0), dataset=dataset,
        )  # fmt: skip
    elif questions is None:
        raise VerbnounError("give --questions FILE (or --two-stage with --predictions)")
    frame_source = None
    if adapter.needs_frames:
        frame_source = frames_for(model, videos, layout, frames, size, dataset, annotations)
    return run_evaluation(
        questions,
        adapter,
        out,
        settings,
        frame_source=frame_source,
        shard=Shard.from_environment(shard),
        batch_size=batch_size,
        workers=workers,
        progress=progress,
        annotations=_dataset_or(dataset, annotations),
        open_vocab=mapper,
        max_consecutive_failures=max_consecutive_failures,
        price_per_mtok=price_per_mtok,
    )


def eval_command(
    model: Annotated[Model, typer.Option(help="Who answers.")],
    out: Annotated[Path, typer.Option(help="Run directory (created; resumed when it exists).")],
    questions: Annotated[
        Path | None, typer.Option(help="Question file (.jsonl) from `mqa build`.")
    ] = None,
    two_stage: Annotated[
        bool,
        typer.Option(
            help="Two-stage recognition: options = the specialist's top-K (--predictions)."
        ),
    ] = False,
    top_k: Annotated[int, typer.Option(min=2, max=26, help="Options of two-stage questions.")] = 20,
    option_text: Annotated[
        str, typer.Option(help="Two-stage option wording: narration or official_key.")
    ] = "narration",
    videos: Annotated[Path | None, typer.Option(help="Video root folder.")] = None,
    layout: Annotated[Layout, typer.Option(help="Video layout under --videos.")] = Layout.chunks,
    frames: Annotated[int, typer.Option(min=1, help="Frames per clip.")] = 8,
    size: Annotated[
        int | None, typer.Option(help="Resize frames to SIZE x SIZE when decoding.")
    ] = None,
    time_instruction: Annotated[
        bool, typer.Option(help="Prefix the SPEC 3 time instruction.")
    ] = True,
    prior_actions: Annotated[
        PriorActions,
        typer.Option(
            help="Prior-actions prompt (SPEC 5b): off, from the ground truth, or from the model's own earlier answers."
        ),
    ] = PriorActions.none,
    parser: Annotated[
        Parser, typer.Option(help="strict (ours) or the original release's rule.")
    ] = Parser.strict,
    frames_control: Annotated[
        FramesControl,
        typer.Option(
            help="Control run: each question shown another clip's frames, or blank grey frames."
        ),
    ] = FramesControl.none,
    seed: Annotated[int, typer.Option(help="Seed of the random baseline.")] = 0,
    predictions: Annotated[Path | None, typer.Option(help="Specialist prediction file.")] = None,
    annotations: Annotated[
        Path | None, typer.Option(help="EK100 annotation folder: breakdowns, prior, row keys.")
    ] = None,
    dataset: Annotated[
        Path | None,
        typer.Option(
            help="Dataset description (YAML) instead of an EK100 folder (paths "
            "relative to --annotations when given)."
        ),
    ] = None,
    api_model: Annotated[str | None, typer.Option(help="Model name on the API server.")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint URL.")] = None,
    api_key_env: Annotated[
        str, typer.Option(help="Environment variable holding the key.")
    ] = "OPENAI_API_KEY",
    concurrency: Annotated[int, typer.Option(min=1, help="Parallel API requests.")] = 4,
    structured: Annotated[
        bool | None,
        typer.Option(help="Ask for JSON {answer} output (default: on for gpt4o, off for video)."),
    ] = None,
    api_protocol: Annotated[
        ApiProtocol,
        typer.Option(
            help="gpt4o: task as system prompt, frames as images (SPEC 3); video: our prompt "
            "and one JPEG-sequence video, for a `verbnoun export hf` model served by vLLM."
        ),
    ] = ApiProtocol.gpt4o,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Local checkpoint directory (--model llavaction).")
    ] = None,
    scoring: Annotated[
        Scoring, typer.Option(help="Local model: letter logits, option likelihood, or generation.")
    ] = Scoring.letters,
    device: Annotated[
        str | None, typer.Option(help="cpu or cuda (default: cuda if present).")
    ] = None,
    hf_model: Annotated[
        str | None,
        typer.Option(
            help="--model hf: a transformers model directory, or a model id already in the "
            "local Hugging Face cache (never downloaded)."
        ),
    ] = None,
    dtype: Annotated[
        HfDtype,
        typer.Option(help="--model hf: weights' dtype (auto: bfloat16 on GPU, else float32)."),
    ] = HfDtype.auto,
    device_map: Annotated[
        str | None,
        typer.Option(help="--model hf: accelerate device map (e.g. auto) instead of --device."),
    ] = None,
    attn_implementation: Annotated[
        str | None, typer.Option(help="--model hf: eager, sdpa or flash_attention_2.")
    ] = None,
    hf_frames: Annotated[
        HfFrames, typer.Option(help="--model hf: frames as one video, as images, or auto.")
    ] = HfFrames.auto,
    batch_size: Annotated[int, typer.Option(min=1, help="Questions per model call.")] = 8,
    workers: Annotated[
        int, typer.Option(min=0, help="Frame-decoding threads (0: decode between model calls).")
    ] = 2,
    shard: Annotated[
        str | None, typer.Option(help="K/N: this process answers shard K of N.")
    ] = None,
    open_vocab: Annotated[
        bool,
        typer.Option(
            help="Ask the direct-narration question instead, map each free-text answer to the "
            "classes of --annotations / --dataset and score top-1 verb, noun and action."
        ),
    ] = False,
    embedding_model: Annotated[
        Path | None,
        typer.Option(
            help="--open-vocab: a local text-embedding model (transformers) for what the class "
            "synonyms miss."
        ),
    ] = None,
    min_similarity: Annotated[
        float, typer.Option(help="--open-vocab: least cosine similarity an embedding match needs.")
    ] = 0.5,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    tries: TriesOpt = RetryPolicy.tries,
    max_wait: MaxWaitOpt = RetryPolicy.max_wait,
    first_wait: FirstWaitOpt = RetryPolicy.first_wait,
    request_timeout: RequestTimeoutOpt = RetryPolicy.request_timeout,
    max_consecutive_failures: MaxFailuresOpt = MAX_CONSECUTIVE_FAILURES,
    price_per_mtok: Annotated[
        str | None,
        typer.Option(help="IN,OUT: price per million input/output tokens, for the cost estimate."),
    ] = None,
) -> None:
    """Evaluate a model on a question file; resumable; writes RUN_DIR/{config,predictions,metrics}.

    Exits with status 3 when some questions failed (the endpoint never answered them): running
    the same command again asks only those."""
    from verbnoun.evaluate.endpoint import parse_price

    retry = RetryPolicy(tries, max_wait, first_wait, request_timeout=request_timeout)
    metrics = run_eval(
        model.value,
        out,
        questions,
        two_stage=two_stage,
        top_k=top_k,
        option_text=option_text,
        videos=videos,
        layout=layout.value,
        frames=frames,
        size=size,
        time_instruction=time_instruction,
        prior_actions=prior_actions.value,
        parser=parser.value,
        frames_control=frames_control.value,
        annotations=annotations,
        dataset=dataset,
        open_vocab=open_vocab,
        embedding_model=embedding_model,
        min_similarity=min_similarity,
        shard=shard,
        batch_size=batch_size,
        workers=workers,
        progress=progress,
        seed=seed,
        predictions=predictions,
        api_model=api_model,
        base_url=base_url,
        api_key_env=api_key_env,
        concurrency=concurrency,
        structured=structured,
        api_protocol=api_protocol.value,
        retry=retry if model == Model.openai else None,
        max_consecutive_failures=max_consecutive_failures,
        price_per_mtok=parse_price(price_per_mtok),
        checkpoint=checkpoint,
        scoring=scoring.value,
        device=device,
        **_hf_options(model.value, hf_model, dtype.value, device_map, attn_implementation,
                      hf_frames.value),
    )  # fmt: skip
    if metrics is None:
        typer.echo(f"{out}: shard done; other shards still have questions to answer")
        return
    if "open_vocab" in metrics:
        mapped = metrics["open_vocab"]
        typer.echo(
            f"{out}: after mapping the free-text answers, top-1 verb {100 * mapped['verb']:.1f}% "
            f"noun {100 * mapped['noun']:.1f}% action {100 * mapped['action']:.1f}% on "
            f"{mapped['n']} clips, unmapped {100 * mapped['unmapped']:.1f}%"
        )
        _endpoint_summary(out, metrics)
        return
    overall = metrics["overall"]
    low, high = overall["ci95"]
    if overall["n"]:  # none when the endpoint answered nothing (the summary below says why)
        typer.echo(
            f"{out}: accuracy {100 * overall['accuracy']:.1f}% (95% CI {100 * low:.1f}-"
            f"{100 * high:.1f}) on {overall['n']} questions, unparsed "
            f"{100 * overall['unparsed_rate']:.1f}%"
        )
    _endpoint_summary(out, metrics)


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


def frames_for(
    model: str,
    videos: Path | None,
    layout: str,
    frames: int,
    size: int | None,
    dataset: Path | None = None,
    annotations: Path | None = None,
):
    """The frame source of a run: ``--videos`` with ``--layout``, or else the ``videos:`` section
    of the dataset description (``--dataset``, or ``--annotations FILE.yaml``)."""
    from verbnoun.data.dataset import GenericDataset, open_dataset
    from verbnoun.evaluate.frames import make_frame_source

    if videos is not None:
        return make_frame_source(videos, layout, frames, size)
    described = None
    if dataset is not None or (annotations is not None and annotations.suffix in (".yaml", ".yml")):
        described = open_dataset(dataset, annotations)
    if isinstance(described, GenericDataset) and described.description.videos is not None:
        return make_frame_source(None, described.video_layout(), frames, size)
    raise VerbnounError(
        f"model {model!r} needs frames: give --videos DIR (or a --dataset whose description "
        "has a videos: section)"
    )


def _open_vocab_mapper(
    model: str,
    scoring: str,
    two_stage: bool,
    dataset: Path | None,
    annotations: Path | None,
    embedding_model: Path | None,
    min_similarity: float,
    device: str | None,
):
    """The mapper of ``--open-vocab``, after checking that the model writes free text."""
    if model in ("random", "prior", "specialist"):
        raise VerbnounError(
            f"--open-vocab needs a model that writes text (openai, or llavaction / hf with "
            f"--scoring generate), not {model!r}"
        )
    if model in ("llavaction", "hf") and scoring != "generate":
        raise VerbnounError(f"--open-vocab with --model {model} needs --scoring generate")
    if two_stage:
        raise VerbnounError(
            "--open-vocab asks without options: it does not combine with --two-stage"
        )
    from verbnoun.data.dataset import open_dataset
    from verbnoun.interpret.open_vocab import OpenVocabMapper

    source = open_dataset(dataset, annotations)
    if source is None:
        raise VerbnounError(
            "--open-vocab needs the class lists: give --annotations DIR or --dataset FILE.yaml"
        )
    return OpenVocabMapper(
        source.verbs(), source.nouns(), embedding_model=embedding_model,
        min_similarity=min_similarity, device=device,
    )  # fmt: skip


def _dataset_or(dataset: Path | None, annotations: Path | None):
    """The open data set of ``--dataset`` (root: ``--annotations``), else ``--annotations``."""
    if dataset is None:
        return annotations
    from verbnoun.data.dataset import open_dataset

    return open_dataset(dataset, annotations)


def score_command(
    runs: Annotated[list[Path], typer.Argument(help="Run directories to compare.")],
    annotations: Annotated[
        Path | None, typer.Option(help="EK100 annotation folder, for head/tail and unseen splits.")
    ] = None,
    dataset: Annotated[
        Path | None, typer.Option(help="Dataset description (YAML), for the same breakdowns.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    reparse: Annotated[
        bool,
        typer.Option(
            help="Parse RUN's stored raw answers again with this version's parser into --out "
            "(no model is asked), then compare the two runs."
        ),
    ] = False,
    out: Annotated[Path | None, typer.Option(help="--reparse: the new run folder.")] = None,
    parser: Annotated[
        Parser | None, typer.Option(help="--reparse: strict or original (default: the run's own).")
    ] = None,
) -> None:
    """Compare runs: accuracy, 95% CI, unparsed rate, and paired tests on shared questions.

    With --reparse RUN --out NEW: rescore RUN's answers with the current parser into NEW first."""
    import json

    from verbnoun.evaluate.score import compare, load_run, render

    source = _dataset_or(dataset, annotations)
    line = None
    if reparse:
        from verbnoun.evaluate.reparse import describe, reparse_run

        if len(runs) != 1 or out is None:
            raise VerbnounError("--reparse takes one run folder and --out NEW_FOLDER")
        summary = reparse_run(
            runs[0], out, parser=parser.value if parser else None, annotations=source
        )
        runs = [runs[0], out]
    elif out is not None or parser is not None:
        raise VerbnounError("--out and --parser go with --reparse")
    loaded = [load_run(r, annotations=source) for r in runs]
    comparison = compare(loaded)
    if reparse:
        line = describe(summary, loaded[0], loaded[1])
        comparison = {"reparse": summary, **comparison}
    if as_json:
        typer.echo(json.dumps(comparison, indent=2))
        return
    render(comparison)
    if line is not None:
        typer.echo(line)


def show_prompt_command(
    run: Annotated[Path, typer.Argument(help="A run folder (from `verbnoun eval`).")],
    question: Annotated[str, typer.Argument(help="A question id of the run's question file.")],
    ids: Annotated[bool, typer.Option(help="Local models: print the input ids too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
) -> None:
    """Print exactly what the run's model was sent for one question (an API request body with
    the frames as placeholders, or a local model's prompt text and input ids), rebuilt from the
    run's config and question file; no model is asked."""
    import json

    from verbnoun.evaluate.prompt_log import render, show_prompt

    shown = show_prompt(run, question)
    if as_json:
        typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    what, text = render(shown, ids=ids)
    typer.echo(f"# {what}", err=True)
    typer.echo(text)


def report_command(
    runs: Annotated[list[Path], typer.Argument(help="Run directories to put in the report.")],
    out: Annotated[Path, typer.Option(help="The HTML file to write.")],
    videos: Annotated[
        Path | None,
        typer.Option(help="Video root: a contact sheet of each question's frames, in OUT_files/."),
    ] = None,
    layout: Annotated[Layout, typer.Option(help="Video layout under --videos.")] = Layout.chunks,
    size: Annotated[int, typer.Option(min=16, help="Contact-sheet frame size in pixels.")] = 96,
    thumbnails: Annotated[str, typer.Option(help="Contact-sheet format: jpeg or webp.")] = "jpeg",
    page_size: Annotated[int, typer.Option(min=1, help="Questions per page of the browser.")] = 50,
    annotations: Annotated[Path | None, typer.Option(help="EK100 annotation folder.")] = None,
    dataset: Annotated[
        Path | None, typer.Option(help="Dataset description (YAML): names of verbs and nouns.")
    ] = None,
) -> None:
    """Write one static HTML page: findings, accuracy per model and benchmark, paired tests,
    and every question in a browser (filters, pages, keys)."""
    from verbnoun.evaluate.report import FORMATS, write_report
    from verbnoun.evaluate.score import load_run

    if thumbnails not in FORMATS:
        raise typer.BadParameter("use jpeg or webp", param_hint="--thumbnails")
    source = _dataset_or(dataset, annotations)
    loaded = [load_run(r, annotations=source) for r in runs]
    frames_of, settings = None, None
    if videos is not None:
        from verbnoun.evaluate.frames import make_frame_source

        frames = loaded[0].config["frames"]
        frames_of = make_frame_source(videos, layout.value, frames, size)
        settings = {"frames": frames, "size": size, "layout": layout.value}
    path = write_report(
        loaded, out, frames_of=frames_of, frame_settings=settings, image_format=thumbnails,
        dataset=source, page_size=page_size, progress=True,
    )  # fmt: skip
    typer.echo(f"report: {path}")
