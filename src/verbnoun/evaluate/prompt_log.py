"""What a run asked, word for word: ``RUN/prompts.jsonl`` and ``verbnoun show-prompt RUN ID``.

* While a run answers, :mod:`verbnoun.evaluate.prompt_record` records the first question it
  asks of each prompt template (``mqa``, ``mqa_prior_actions``, ``direct_narration``) in
  ``prompts.jsonl`` (``prompts.shard-K-of-N.jsonl`` under shards), one JSON line: the question
  id, the template, the model, and what the adapter sent (its ``sent(request)``). An API
  model's request body, each frame a placeholder (``<JPEG frame 1 of 8>``); a local model's
  prompt text and input ids
  (``hf``: the chat text and the ids after the processor expanded each image or video;
  ``llavaction``: the qwen_1_5 prompt and its ids, ``<image>`` as -200); for a model that sends
  no text of its own (the baselines), the question's chat prompt. A resumed run records only
  templates not recorded yet.
* :func:`show_prompt` (``verbnoun show-prompt RUN ID``) rebuilds any question's request from the
  run's config and question file the way the runner builds it
  (:func:`~verbnoun.evaluate.runner.build_request`; with the run's own earlier answers when it
  fed the model its own answers) and returns what the run's adapter sends for it, from the
  recorded model settings alone: no weights are loaded, no model is asked, no key is needed. For
  ``hf`` the ids are those of the chat text before the processor expands the frames' placeholders
  (that needs the frames; ``prompts.jsonl`` holds the expanded ids of one question per template).
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import fields
from pathlib import Path

from verbnoun.bench.questions import Question, read_questions
from verbnoun.errors import VerbnounError
from verbnoun.evaluate.adapters import Request
from verbnoun.evaluate.prompt_record import NO_TEXT, recorded, template_of
from verbnoun.fileio import read_json, require, sha256_file

__all__ = ["recorded", "render", "show_prompt"]  # recorded: what the run recorded


def _run_questions(run_dir: Path) -> tuple[dict, Path, list[Question]]:
    """A run's config, question file (sha256 checked) and questions."""
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise VerbnounError(f"{run_dir}: not a run directory (no config.json)")
    config = read_json(config_path, expect=dict)
    for key in ("model", "questions", "questions_sha256"):
        require(config, key, str, config_path)
    path = Path(config["questions"])
    if not path.is_file():
        raise VerbnounError(f"{config_path}: question file {path} not found")
    if sha256_file(path) != config["questions_sha256"]:
        raise VerbnounError(f"{path}: changed since the run {run_dir} was made")
    return config, path, read_questions(path)


def _answers_asked_with(run_dir: Path) -> dict[str, dict]:
    """The answers a run's prompts were built from: its own, or, for a run re-parsed from
    another (``reparse.json``), those of the run that asked."""
    from verbnoun.evaluate.records import answered

    seen = set()
    while (run_dir / "reparse.json").is_file() and run_dir.resolve() not in seen:
        seen.add(run_dir.resolve())
        source = Path(read_json(run_dir / "reparse.json", expect=dict).get("from", ""))
        if not (source / "config.json").is_file():
            raise VerbnounError(
                f"{run_dir}: its prompts were built from the answers of {source}, which is gone"
            )
        run_dir = source
    return answered(run_dir)


def show_prompt(run_dir: str | Path, question_id: str) -> dict:
    """What the run's adapter sends for question ``question_id`` (see the module's docstring):
    ``{"id", "template", "model", "sent"}``, as a ``prompts.jsonl`` record."""
    from verbnoun.evaluate.runner import EvalSettings, build_request

    run_dir = Path(run_dir)
    config, path, questions = _run_questions(run_dir)
    by_id = {q.id: q for q in questions}
    question = by_id.get(question_id)
    if question is None:
        raise VerbnounError(f"{path}: no question {question_id!r} (the question file of {run_dir})")
    names = {f.name for f in fields(EvalSettings)}
    settings = EvalSettings(**{k: v for k, v in config.items() if k in names})
    open_vocab = "open_vocab" in config
    done = _answers_asked_with(run_dir) if settings.prior_actions == "model" else {}
    frames = [None] * settings.frames  # stand-ins: only their number is shown
    request = build_request(
        question, frames, settings, open_vocab=open_vocab, done=done, by_id=by_id
    )
    model, model_settings = config["model"], config.get("model_settings") or {}
    with contextlib.redirect_stdout(sys.stderr):  # libraries' notices never mix into the prompt
        sent = _sent_offline(model, model_settings, request, settings.frames)
    template = template_of(request, settings.prior_actions, open_vocab)
    return {"id": question.id, "template": template, "model": model, "sent": sent}


def _sent_offline(model: str, model_settings: dict, request: Request, n_frames: int) -> dict:
    """What the adapter named ``model`` sends for ``request``, from its recorded settings."""
    if model == "openai":
        from verbnoun.evaluate.openai_adapter import ChatFormat

        return ChatFormat.from_settings(model_settings).sent(request)
    if model == "hf":
        from verbnoun.evaluate.hf_adapter import shown_prompt

        return shown_prompt(model_settings, request, n_frames)
    if model == "llavaction":
        from verbnoun.evaluate.local_adapter import shown_prompt as shown_local

        return shown_local(model_settings, request)
    return {"prompt": request.prompt, "note": NO_TEXT}


def render(shown: dict, *, ids: bool = False) -> tuple[str, str]:
    """``(what, text)``: a one-line description and the prompt exactly as sent (an API body as
    indented JSON, a local model's text verbatim; with ``ids``, its input ids after it)."""
    sent = shown["sent"]
    what = f"question {shown['id']}, template {shown['template']}, model {shown['model']}"
    if "body" in sent:
        return f"{what}: the request body (frames as placeholders)", json.dumps(
            sent["body"], indent=2, ensure_ascii=False
        )
    text = sent.get("text", sent.get("prompt", ""))
    if "note" in sent:
        return f"{what}: {sent['note']}", text
    if not ids or "input_ids" not in sent:
        return f"{what}: the prompt text", text
    expanded = {True: ", images expanded", False: ", image placeholders not expanded"}
    label = expanded.get(sent.get("input_ids_expanded"), "; -200 is <image>")
    return f"{what}: the prompt text and its input ids", (
        f"{text}\n--- input_ids ({len(sent['input_ids'])}{label}) ---\n{sent['input_ids']}"
    )
