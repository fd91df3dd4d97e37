"""What a run asked, as it asked it: ``RUN/prompts.jsonl``, written while the run answers.

The first question a run asks of each prompt template (:func:`template_of`: ``mqa``,
``mqa_prior_actions``, ``direct_narration``) is recorded in ``prompts.jsonl``
(``prompts.shard-K-of-N.jsonl`` under shards), one JSON line: the question id, the template, the
model, and what the adapter sent (its ``sent(request)``; for a model that sends no text of its
own, the baselines, the question's chat prompt). A resumed run records only templates not
recorded yet. :mod:`verbnoun.evaluate.prompt_log` rebuilds any question's prompt from a run
(``verbnoun show-prompt``).
"""

from __future__ import annotations

from pathlib import Path

from verbnoun import runs
from verbnoun.evaluate.adapters import Request, abilities_of

TEMPLATES = ("mqa", "mqa_prior_actions", "direct_narration")
NO_TEXT = "this model sends no prompt of its own: the question's chat prompt"


def template_of(request: Request, prior_actions: str, open_vocab: bool) -> str:
    """Which prompt template a request of a run uses."""
    if open_vocab:
        return "direct_narration"
    if prior_actions != "none" and request.question.prior_actions:
        return "mqa_prior_actions"
    return "mqa"


def sent_by(adapter, request: Request) -> dict:
    """What ``adapter`` sends for ``request`` (its ``sent``), or the chat prompt for an adapter
    that sends no text (the baselines)."""
    if not abilities_of(adapter).shows_prompt:
        return {"prompt": request.prompt, "note": NO_TEXT}
    return adapter.sent(request)


def prompt_files(run_dir: Path) -> list[Path]:
    return runs.shard_files(Path(run_dir), "prompts")


def recorded(run_dir: Path) -> list[dict]:
    """The recorded prompts of a run (every shard's file); a last line cut by a kill is
    skipped."""
    return list(
        runs.merged(Path(run_dir), "prompts", "not a prompt record", _no_template, say_json=True)
    )


def _no_template(record: dict) -> str | None:
    return None if isinstance(record.get("template"), str) else "no 'template'"


class PromptLog:
    """Records the first request of each template a run asks (see the module's docstring)."""

    def __init__(
        self, run_dir: Path, filename: str, adapter, prior_actions: str, open_vocab: bool
    ) -> None:
        self.path = Path(run_dir) / filename
        runs.repair_tail(self.path)  # a line cut by a kill: the next one starts clean
        self.adapter = adapter
        self.prior_actions = prior_actions
        self.open_vocab = open_vocab
        self.seen = {record["template"] for record in recorded(Path(run_dir))}

    def note(self, request: Request) -> None:
        template = template_of(request, self.prior_actions, self.open_vocab)
        if template in self.seen:
            return
        self.seen.add(template)
        record = {
            "id": request.question.id,
            "template": template,
            "model": self.adapter.name,
            "sent": sent_by(self.adapter, request),
        }
        with runs.Appender(self.path) as log:
            log.append([record])
