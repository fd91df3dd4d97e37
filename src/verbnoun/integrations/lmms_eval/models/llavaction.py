"""``Llavaction``: an lmms-eval model (``lmms`` subclass) that runs a llavaction checkpoint.

``python -m lmms_eval --model llavaction --model_args checkpoint=DIR,frames=8 --tasks ...``

What each task hands over becomes one video per request:

* a list of frames (PIL images or uint8 arrays, e.g. the SPEC 2 frames of an exported
  llavaction task) is the video as is;
* a list of video file paths (MVBench, VideoMME, ...) is decoded by our own decoder: ``frames``
  frames sampled per SPEC 2 over the whole file (midpoints of equal parts, presentation-exact);
  with ``time_instruction=true`` the SPEC 3 time instruction (the file's duration, ``frames``)
  precedes the task text, as the LLaVAction checkpoints were trained;
* no visual: a text-only prompt.

The user turn is ``<image>\\n`` + the task's text in the qwen_1_5 chat template (SPEC 3.1), so
an exported llavaction task gets byte for byte the prompt ``verbnoun eval`` builds.

``generate_until`` decodes greedily (``max_new_tokens`` and ``until`` from the task's generation
settings). With ``scoring=letters`` (or ``text``) it instead answers an exported llavaction task
as ``verbnoun eval --scoring letters`` (``text``) does: the option letters' next-token logits
(each option's answer likelihood), returning the chosen letter. ``loglikelihood`` returns the
summed log-probability of each continuation after the assistant header, and whether it is the
greedy one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms

from verbnoun.bench import prompts
from verbnoun.errors import VerbnounError

SCORINGS = ("generate", "letters", "text")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _flag(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _batch_size(value: object) -> int:
    if value is None or (isinstance(value, str) and value.startswith("auto")):
        return 1
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise VerbnounError(f"batch_size must be a number, got {value!r}") from None
    if size < 1:
        raise VerbnounError(f"batch_size must be at least 1, got {size}")
    return size


class Llavaction(lmms):
    """A llavaction (or LLaVA-Video / OneVision) checkpoint as an lmms-eval model."""

    is_simple = True

    def __init__(
        self,
        checkpoint: str,
        frames: int = 8,
        scoring: str = "generate",
        time_instruction: bool = False,
        max_new_tokens: int = 16,
        device: str | None = None,
        batch_size: int | str = 1,
        **unused: object,
    ) -> None:
        super().__init__()
        from verbnoun.evaluate.local_adapter import LlavactionSettings
        from verbnoun.evaluate.registry import build_adapter

        if scoring not in SCORINGS:
            raise VerbnounError(f"unknown scoring {scoring!r}; choose one of {', '.join(SCORINGS)}")
        self.checkpoint = Path(str(checkpoint))
        if not self.checkpoint.is_dir():
            raise VerbnounError(f"{self.checkpoint}: checkpoint directory not found")
        self.frames = int(frames)
        if self.frames < 1:
            raise VerbnounError(f"frames must be at least 1, got {self.frames}")
        self.scoring = scoring
        self.time_instruction = _flag(time_instruction)
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = _batch_size(batch_size)
        adapter = build_adapter(  # the checkpoint loaded as `verbnoun eval --model llavaction`
            "llavaction",
            LlavactionSettings(self.checkpoint, mode=scoring, device=_device(device),
                               max_new_tokens=self.max_new_tokens),
        )  # fmt: skip
        self.model, self.processor = adapter.model, adapter.processor  # type: ignore[attr-defined]
        self._readers: dict[str, object] = {}

    # --- inputs -------------------------------------------------------------------------------

    def _video_file(self, path: Path) -> tuple[np.ndarray, float]:
        """``self.frames`` SPEC 2 frames over the whole file, and the file's duration."""
        from verbnoun.data.layouts import FileLayout
        from verbnoun.data.video import VideoReader

        reader = VideoReader(FileLayout(path))
        info = reader.info(path.name)
        clip = reader.read(path.name, 0.0, info.duration, self.frames)
        return clip.frames, info.duration

    def _pixels(self, visuals: object, where: str):
        """Pixel values ``(N, 3, S, S)`` of one request's visuals (or ``None``), and the video's
        duration when it came from a file."""
        if visuals is None:
            return None, None
        items = list(visuals) if isinstance(visuals, (list, tuple)) else [visuals]
        if not items:
            return None, None
        arrays: list[np.ndarray] = []
        duration = None
        for item in items:
            if isinstance(item, (str, Path)):
                path = Path(item)
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    arrays.append(_image_array(path, where))
                    continue
                clip, duration = self._video_file(path)
                arrays.extend(clip)
            elif isinstance(item, np.ndarray):
                arrays.extend(item if item.ndim == 4 else [item])
            elif hasattr(item, "convert"):  # a PIL image
                arrays.append(np.asarray(item.convert("RGB")))
            else:
                raise VerbnounError(f"{where}: cannot read a visual of type {type(item).__name__}")
        if len({a.shape for a in arrays}) == 1:
            pixels = self.processor.pixel_values(np.stack(arrays))
        else:
            import torch

            pixels = torch.cat([self.processor.pixel_values(a[None]) for a in arrays])
        return pixels.to(self.model.dtype), duration

    def _prompt(self, context: str, has_video: bool, duration: float | None, where: str) -> str:
        """The qwen_1_5 chat prompt: ``<image>\\n`` (+ time instruction) + the task's text."""
        count = context.count(prompts.IMAGE_TOKEN)
        if count > 1:
            raise VerbnounError(f"{where}: {count} <image> placeholders; one video per request")
        if has_video and count == 0:
            if self.time_instruction and duration is not None:
                context = prompts.time_instruction(duration, self.frames) + context
            context = f"{prompts.IMAGE_TOKEN}\n{context}"
        if not has_video and count:
            context = context.replace(prompts.IMAGE_TOKEN, "")
        return prompts.chat_prompt(context)

    def _encode(self, context: str, doc_to_visual: Callable, doc: dict, where: str):
        import torch

        pixels, duration = self._pixels(doc_to_visual(doc), where)
        prompt = self._prompt(context, pixels is not None, duration, where)
        return torch.tensor(self.processor.tokenize(prompt), dtype=torch.long), pixels

    def _doc(self, task: str, split: str, doc_id: int) -> dict:
        try:
            return self.task_dict[task][split][doc_id]
        except (KeyError, IndexError):
            raise VerbnounError(f"task {task!r}: no document {doc_id} in split {split!r}") from None

    # --- lmms-eval interface -----------------------------------------------------------------

    def generate_until(self, requests: list[Instance]) -> list[str]:
        """Greedy answers (or chosen letters under ``scoring=letters|text``), in request order."""
        answers: list[str] = []
        for start in range(0, len(requests), self.batch_size):
            answers.extend(self._generate_batch(requests[start : start + self.batch_size]))
        return answers

    def _generate_batch(self, batch: Sequence[Instance]) -> list[str]:
        from verbnoun.model.inference import generate, score_options

        ids, pixels, docs, settings = [], [], [], []
        for request in batch:
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            where = f"task {task!r} document {doc_id}"
            doc = self._doc(task, split, doc_id)
            row_ids, row_pixels = self._encode(context, doc_to_visual, doc, where)
            ids.append(row_ids)
            pixels.append(row_pixels)
            docs.append((doc, where))
            settings.append(dict(gen_kwargs or {}))
        if self.scoring != "generate":
            options = [_options(doc, where) for doc, where in docs]
            choices = score_options(
                self.model, self.processor, ids, pixels, options, mode=self.scoring
            )
            return [choice.letter for choice in choices]
        max_new = max(int(s.get("max_new_tokens", self.max_new_tokens)) for s in settings)
        out = generate(
            self.model,
            ids,
            pixels,
            eos_ids=self.processor.eos_ids,
            max_new_tokens=max_new,
            vocab_limit=self.processor.vocab_limit,
        )
        texts = []
        for tokens, gen in zip(out, settings, strict=True):
            limit = int(gen.get("max_new_tokens", self.max_new_tokens))
            texts.append(_cut(self.processor.decode(tokens[:limit]).strip(), gen.get("until")))
        return texts

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        """Summed log-probability of each continuation after the prompt, and whether greedy
        decoding would produce it."""
        import torch

        results = []
        with torch.no_grad():
            for request in requests:
                context, continuation, doc_to_visual, doc_id, task, split = request.args
                where = f"task {task!r} document {doc_id}"
                doc = self._doc(task, split, doc_id)
                if callable(continuation):
                    continuation = continuation(doc)
                prompt_ids, row_pixels = self._encode(context, doc_to_visual, doc, where)
                target = self.processor.tokenizer.encode(
                    str(continuation), add_special_tokens=False
                )
                if not target:
                    results.append((0.0, True))
                    continue
                ids = torch.cat([prompt_ids, torch.tensor(target, dtype=torch.long)])
                batch = self.model.prepare([ids], [row_pixels], padding_side="left")
                logits = self.model.run(batch, logits_to_keep=len(target) + 1).logits
                logp = logits[0, : len(target)].float().log_softmax(-1)
                wanted = torch.tensor(target, device=logp.device)
                total = float(logp.gather(1, wanted[:, None]).sum())
                greedy = bool((logp.argmax(-1) == wanted).all())
                results.append((total, greedy))
        return results

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        """Not supported: the checkpoints answer single-turn questions."""
        raise VerbnounError("the llavaction model does not support multi-round generation")


def _device(device: str | None) -> str | None:
    if device is None:
        return None
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise VerbnounError(f"device {device!r} asked for, but no CUDA device is available")
    return device


def _image_array(path: Path, where: str) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise VerbnounError(f"{where}: image file not found: {path}")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _options(doc: dict, where: str) -> list[str]:
    """The option texts of an exported llavaction task's document (for letter scoring)."""
    from verbnoun.integrations.lmms_eval.task import question_of

    if "llavaction_question" not in doc:
        raise VerbnounError(
            f"{where}: scoring=letters|text needs a task exported by `verbnoun export "
            "lmms-eval` (its documents carry the options); use scoring=generate"
        )
    return question_of(doc).option_texts


def _cut(text: str, until: object) -> str:
    """The text up to the first stop string (lmms-eval's ``until``)."""
    stops = [until] if isinstance(until, str) else list(until or [])
    for stop in stops:
        if stop and stop in text:
            text = text[: text.index(stop)]
    return text
