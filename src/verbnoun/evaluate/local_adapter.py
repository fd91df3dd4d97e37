"""The ``llavaction`` adapter: a local checkpoint (released LLaVA-NeXT layout or ours).

Modes: ``letters`` (default) reads the option letters' next-token logits after the prompt, one
forward pass per batch; ``text`` scores each option's full answer by likelihood; ``generate``
decodes greedily and lets the runner parse the text, as the paper did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from verbnoun.errors import VerbnounError
from verbnoun.evaluate.adapters import Abilities, AdapterSpec, DataSettings, Reply, Request
from verbnoun.runs import checkpoint_fingerprint

MODES = ("letters", "text", "generate")


def shown_prompt(settings: dict, request: Request) -> dict:
    """What a run's checkpoint was given for ``request``, from the run's ``model_settings``
    alone (the tokenizer is loaded, no weights): :meth:`LlavactionAdapter.sent`."""
    from verbnoun.model.checkpoint import read_config
    from verbnoun.model.processor import Processor
    from verbnoun.model.tokenization import load_tokenizer

    directory = Path(settings["checkpoint"])
    if not directory.is_dir():
        raise VerbnounError(f"{directory}: checkpoint directory not found")
    processor = Processor(load_tokenizer(directory), read_config(directory).vision.image_size)
    return {"prompt": request.prompt, "input_ids": processor.tokenize(request.prompt)}


class LlavactionAdapter:
    """Answers with a local LLaVAction (or LLaVA-Video / OneVision) checkpoint."""

    name = "llavaction"
    needs_frames = True
    abilities = Abilities(shows_prompt=True)

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        mode: str = "letters",
        device: str | None = None,
        max_new_tokens: int = 16,
    ) -> None:
        if mode not in MODES:
            raise VerbnounError(f"unknown scoring mode {mode!r}; choose one of {', '.join(MODES)}")
        from verbnoun.model.checkpoint import load_pretrained

        self.checkpoint = Path(checkpoint)
        if not self.checkpoint.is_dir():
            raise VerbnounError(f"{self.checkpoint}: checkpoint directory not found")
        self.mode = mode
        self.max_new_tokens = max_new_tokens
        self.model, self.processor = load_pretrained(self.checkpoint, device=device)
        self.model.eval()

    def settings(self) -> dict:
        return {
            "checkpoint": str(self.checkpoint.resolve()),
            "fingerprint": checkpoint_fingerprint(self.checkpoint),
            "mode": self.mode,
            "max_new_tokens": self.max_new_tokens if self.mode == "generate" else None,
            "dtype": str(self.model.dtype).removeprefix("torch."),
        }

    def sent(self, request: Request) -> dict:
        """The prompt and its token ids as :meth:`answer` gives them to the model (``<image>``
        is -200, where the frames' features go), for a run's ``prompts.jsonl``."""
        return {"prompt": request.prompt, "input_ids": self.processor.tokenize(request.prompt)}

    def answer(self, requests: Sequence[Request]) -> list[Reply]:
        import torch

        from verbnoun.bench.prompts import letter
        from verbnoun.model.inference import generate, score_options

        ids = [torch.tensor(self.processor.tokenize(r.prompt), dtype=torch.long) for r in requests]
        pixels = [self.processor.pixel_values(r.frames).to(self.model.dtype) for r in requests]
        if self.mode == "generate":
            out = generate(
                self.model, ids, pixels, eos_ids=self.processor.eos_ids,
                max_new_tokens=self.max_new_tokens, vocab_limit=self.processor.vocab_limit,
            )  # fmt: skip
            return [Reply(self.processor.decode(tokens).strip()) for tokens in out]
        options = [r.question.option_texts for r in requests]
        choices = score_options(self.model, self.processor, ids, pixels, options, mode=self.mode)
        return [Reply(letter(c.index), scores=list(c.scores)) for c in choices]


@dataclass(frozen=True)
class LlavactionSettings:
    """A local checkpoint (``--model llavaction``)."""

    checkpoint: Path | None = None
    mode: str = "letters"  # --scoring: letters, text or generate
    device: str | None = None  # default: cuda if present (under torchrun, cuda:LOCAL_RANK)
    max_new_tokens: int = 16


def rank_device(device: str | None) -> str | None:
    """``device``, or under torchrun with CUDA one GPU per process (``cuda:LOCAL_RANK``)."""
    import os

    if device is None and "LOCAL_RANK" in os.environ:
        import torch

        if torch.cuda.is_available():
            return f"cuda:{os.environ['LOCAL_RANK']}"
    return device


def _build(settings: LlavactionSettings, data: DataSettings) -> LlavactionAdapter:
    if settings.checkpoint is None:
        raise VerbnounError("--model llavaction needs --checkpoint DIR")
    return LlavactionAdapter(
        settings.checkpoint, mode=settings.mode, device=rank_device(settings.device),
        max_new_tokens=settings.max_new_tokens,
    )  # fmt: skip


SPEC = AdapterSpec(
    "llavaction", LlavactionSettings, _build, needs=frozenset({"frames"}),
    text_answers="generate", options={"mode": "scoring"},
)  # fmt: skip
