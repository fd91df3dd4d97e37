"""The ``hf`` adapter: any transformers image-text-to-text model answers our questions.

In: a model directory, or a model id found in the local Hugging Face cache (nothing is ever
downloaded), that ``AutoModelForImageTextToText`` and ``AutoProcessor`` load and whose processor
has a chat template. Out: one :class:`~verbnoun.evaluate.adapters.Reply` per request, parsed and
scored by the runner like any other model's.

* The prompt is ours: the user turn of SPEC 3.1 (time instruction, task and options) without its
  ``<image>`` placeholder, as the text part of one user message in the family's own message format
  (its chat template). The frames come first in that message: one ``video`` part when the
  processor takes videos, else one ``image`` part per frame.
* Scoring: ``letters`` runs the prompts once (a batch) and reads each option letter's next-token
  log-probability through the model's own tokenizer; a letter written with and without a leading
  space (``A`` and `` A``, when each is one token) counts as one answer (log-sum-exp).
  ``text`` scores each option's answer ``X. text`` by its mean token log-likelihood (one sequence
  per option, so the frames run once per option). ``generate`` decodes greedily and the runner
  parses the text. All three leave out the rows of a padded vocabulary (an embedding with more
  rows than the tokenizer has tokens): no such row is ever scored or generated.
* ``settings()`` (saved in the run's ``config.json``) holds the model id, its revision (the commit
  of a cache snapshot, when known), a fingerprint of the directory, the architecture, dtype,
  attention implementation, how frames are passed and the processors' settings: a run folder never
  mixes two models.

Without torchvision (it does not install beside some CPU builds of torch) transformers cannot
build video processors, nor the processors that hold one. The processor is then built from its
parts with the image processor's PIL backend; video goes in only for families whose video
processor just resizes and normalises each frame (:data:`FRAME_VIDEO_FAMILIES`, the LLaVA-OneVision
layout, done here with the same arithmetic), other families get their frames as images.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from verbnoun.errors import VerbnounError
from verbnoun.evaluate.adapters import Abilities, AdapterSpec, DataSettings, Reply, Request

MODES = ("letters", "text", "generate")
DTYPES = ("auto", "float32", "bfloat16", "float16")
FRAMES_AS = ("auto", "video", "images")
# processors whose video processor resizes and normalises each frame, nothing else
FRAME_VIDEO_FAMILIES = ("LlavaOnevisionProcessor",)


@dataclass(frozen=True)
class HfSettings:
    """How to load and ask a transformers model (``--model hf``)."""

    model: str  # a directory, or a model id in the local Hugging Face cache
    mode: str = "letters"
    dtype: str = "auto"  # bfloat16 on a GPU, float32 on a CPU
    device: str | None = None  # cpu, cuda, cuda:1 (default: cuda when present)
    device_map: str | None = None  # accelerate's placement ("auto"), instead of device
    attn_implementation: str | None = None  # eager, sdpa, flash_attention_2 (default: model's)
    max_new_tokens: int = 16
    frames_as: str = "auto"  # video where the processor takes one, else images

    def check(self) -> None:
        for value, allowed, option in (
            (self.mode, MODES, "--scoring"),
            (self.dtype, DTYPES, "--dtype"),
            (self.frames_as, FRAMES_AS, "--hf-frames"),
        ):
            if value not in allowed:
                raise VerbnounError(f"{option} {value!r}: choose one of {', '.join(allowed)}")


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are, and its name and revision when the cache says them."""

    path: Path
    model_id: str
    revision: str | None


def resolve_model(spec: str | Path) -> ModelSource:
    """A local directory, or a model id already in the Hugging Face cache (never downloaded)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        path = path.resolve()
        # a snapshot folder of the cache: .../models--org--name/snapshots/<commit>
        parent = path.parent
        if parent.name == "snapshots" and parent.parent.name.startswith("models--"):
            model_id = parent.parent.name.removeprefix("models--").replace("--", "/")
            return ModelSource(path, model_id, path.name)
        return ModelSource(path, str(path), None)
    text = str(spec)
    if text.count("/") == 1 and not text.startswith((".", "/", "~")):
        try:
            from huggingface_hub import snapshot_download

            found = Path(snapshot_download(text, cache_dir=hub_cache(), local_files_only=True))
        except Exception:  # not in the cache (or no hub client): nothing is downloaded
            found = None
        if found is not None and found.is_dir():
            return ModelSource(found, text, found.name)
    raise VerbnounError(
        f"{spec}: model directory not found (nor in the local Hugging Face cache; --model hf "
        "never downloads)"
    )


def hub_cache() -> str | None:
    """The Hugging Face cache folder the environment names now (``HF_HUB_CACHE``, else
    ``HF_HOME``/hub; huggingface_hub reads them only once, at import)."""
    import os

    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


def torchvision_works() -> bool:
    """Whether torchvision imports (a wheel built for another torch fails at import)."""
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        import torchvision  # noqa: F401
    except Exception:
        return False
    return True


def _read_json(path: Path) -> dict:
    """A processor or template JSON file of the model directory; ``{}`` when there is none."""
    from verbnoun.fileio import read_json

    return read_json(path) if path.is_file() else {}


def _chat_template(directory: Path, tokenizer) -> str | None:
    """The chat template saved beside the processor, else the tokenizer's."""
    jinja = directory / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    saved = _read_json(directory / "chat_template.json").get("chat_template")
    if isinstance(saved, str):
        return saved
    return getattr(tokenizer, "chat_template", None)


class FrameVideoProcessor:
    """A video processor for :data:`FRAME_VIDEO_FAMILIES` without torchvision: each uint8 frame
    resized by Pillow (bicubic, on the 8-bit image) to the configured size, rescaled in float64,
    cast to float32 and normalised in float32, as the slow image processors do."""

    def __init__(self, config: dict) -> None:
        size = config.get("size") or {}
        if "height" not in size or "width" not in size:
            raise VerbnounError(f"video processor size {size!r}: need height and width")
        self.config = config
        self.size = (int(size["height"]), int(size["width"]))
        self.rescale = float(config.get("rescale_factor", 1 / 255))
        self.mean = [float(m) for m in config.get("image_mean", [0.5] * 3)]
        self.std = [float(s) for s in config.get("image_std", [0.5] * 3)]

    def to_dict(self) -> dict:
        return {"class": type(self).__name__, **self.config}

    def __call__(self, videos, **kwargs) -> dict:
        import numpy as np

        from verbnoun.data.images import resize_frames

        videos = [videos] if isinstance(videos, np.ndarray) and videos.ndim == 4 else videos
        mean = np.array(self.mean, dtype=np.float32)[:, None, None]
        std = np.array(self.std, dtype=np.float32)[:, None, None]
        out = []
        for video in videos:
            frames = resize_frames(np.asarray(video, dtype=np.uint8), self.size)
            scaled = (frames.astype(np.float64) * self.rescale).astype(np.float32)
            out.append((scaled.transpose(0, 3, 1, 2) - mean) / std)
        return {"pixel_values_videos": out}


def _lenient(cls):
    """``cls`` accepting a stand-in (or no) video processor in place of transformers' own."""

    def check(self, name, argument):
        if name == "video_processor" and (
            argument is None or isinstance(argument, FrameVideoProcessor)
        ):
            return None
        return cls.check_argument_for_proper_class(self, name, argument)

    return type(cls.__name__, (cls,), {"check_argument_for_proper_class": check})


def _processor_class_name(directory: Path) -> str | None:
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        found = _read_json(directory / name).get("processor_class")
        if isinstance(found, str):
            return found
    return None


def _processor_from_parts(directory: Path):
    """The processor built from its parts, without torchvision (see the module docstring)."""
    import inspect

    import transformers
    from transformers import AutoImageProcessor, AutoTokenizer

    name = _processor_class_name(directory)
    cls = getattr(transformers, name, None) if name else None
    if cls is None:
        raise VerbnounError(f"{directory}: no processor_class that transformers knows")
    attributes = cls.get_attributes()
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    parts: dict = {"tokenizer": tokenizer}
    if "image_processor" in attributes:
        parts["image_processor"] = AutoImageProcessor.from_pretrained(
            str(directory), local_files_only=True, backend="pil"
        )
    if "video_processor" in attributes:
        video = _read_json(directory / "video_preprocessor_config.json")
        parts["video_processor"] = (
            FrameVideoProcessor(video) if name in FRAME_VIDEO_FAMILIES and video else None
        )
    unknown = set(attributes) - set(parts)
    if unknown:
        raise VerbnounError(
            f"{directory}: {name} needs {', '.join(sorted(unknown))}, which this adapter cannot "
            "build without torchvision"
        )
    accepted = inspect.signature(cls.__init__).parameters
    extra = {
        key: value
        for key, value in _read_json(directory / "processor_config.json").items()
        if key in accepted and key not in parts and key != "chat_template"
    }
    template = _chat_template(directory, tokenizer)
    return _lenient(cls)(**parts, **extra, chat_template=template)


def load_processor(directory: Path):
    """``AutoProcessor`` from local files; without torchvision, built from its parts."""
    from transformers import AutoProcessor

    if torchvision_works():
        return AutoProcessor.from_pretrained(str(directory), local_files_only=True)
    try:
        return AutoProcessor.from_pretrained(str(directory), local_files_only=True, backend="pil")
    except (ImportError, ValueError, TypeError, AttributeError):  # a video processor is needed
        return _processor_from_parts(directory)


def _settings_of(part) -> dict | None:
    if part is None:
        return None
    if isinstance(part, FrameVideoProcessor):
        return part.to_dict()
    data = json.loads(part.to_json_string())
    return {"class": type(part).__name__, **data}


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class HfAdapter:
    """Answers with a transformers image-text-to-text model (see the module docstring)."""

    name = "hf"
    needs_frames = True
    abilities = Abilities(shows_prompt=True)

    def __init__(self, settings: HfSettings) -> None:
        import torch
        from transformers import AutoModelForImageTextToText

        settings.check()
        self.options = settings
        self.source = resolve_model(settings.model)
        path = self.source.path
        if not (path / "config.json").is_file():
            raise VerbnounError(f"{path}: no config.json: not a transformers model directory")
        try:
            self.processor = load_processor(path)
        except VerbnounError:
            raise
        except Exception as exc:
            raise VerbnounError(f"{path}: cannot load its processor: {_first_line(exc)}") from None
        if not getattr(self.processor, "chat_template", None):
            raise VerbnounError(
                f"{path}: the model has no chat template (chat_template.jinja, "
                "chat_template.json or the tokenizer's); --model hf writes each family's "
                "messages with it"
            )
        self.tokenizer = self.processor.tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.frames_as = self._frames_as(settings.frames_as)
        if settings.device_map is None:
            device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
        else:
            device = None
        on_gpu = (device or "cuda").startswith("cuda") and torch.cuda.is_available()
        if settings.dtype == "auto":
            dtype = torch.bfloat16 if on_gpu else torch.float32
        else:
            dtype = getattr(torch, settings.dtype)
        load = {"dtype": dtype, "local_files_only": True}
        if settings.device_map is not None:
            load["device_map"] = settings.device_map
        if settings.attn_implementation is not None:
            load["attn_implementation"] = settings.attn_implementation
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # the runner shows progress; logs stay clean
        try:
            self.model = AutoModelForImageTextToText.from_pretrained(str(path), **load)
        except Exception as exc:
            raise VerbnounError(f"{path}: cannot load the model: {_first_line(exc)}") from None
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        if device is not None:
            self.model.to(device)
        self.model.eval()
        self.letter_ids: dict[str, list[int]] = {}

    def _frames_as(self, wanted: str) -> str:
        video = getattr(self.processor, "video_processor", None) is not None
        if wanted == "video" and not video:
            raise VerbnounError(
                f"{self.source.path}: this processor takes no video here (a video processor "
                "needs torchvision for this family); use --hf-frames images"
            )
        if wanted == "auto":
            return "video" if video else "images"
        return wanted

    def settings(self) -> dict:
        config = self.model.config
        processor = self.processor
        return {
            "model_id": self.source.model_id,
            "revision": self.source.revision,
            "path": str(self.source.path),
            "fingerprint": _fingerprint(self.source.path),
            "architecture": (config.architectures or [type(self.model).__name__])[0],
            "mode": self.options.mode,
            "max_new_tokens": self.options.max_new_tokens
            if self.options.mode == "generate"
            else None,
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "attn_implementation": getattr(config, "_attn_implementation", None),
            "frames_as": self.frames_as,
            "processor": {
                "class": type(processor).__name__,
                "image_processor": _settings_of(getattr(processor, "image_processor", None)),
                "video_processor": _settings_of(getattr(processor, "video_processor", None))
                if self.frames_as == "video"
                else None,
                "chat_template_sha256": _sha256(processor.chat_template),
            },
        }

    # -- inputs -----------------------------------------------------------------------------

    def _text(self, request: Request) -> str:
        """The family's chat text of one request: frames first, then our user turn."""
        frames = request.frames
        if frames is None:
            raise VerbnounError(f"question {request.question.id}: --model hf needs frames")
        return chat_text(self.processor, self.frames_as, len(frames), request)

    def sent(self, request: Request) -> dict:
        """What :meth:`answer` gives the model for ``request``: the chat text and the input ids
        the processor makes of it and the request's frames (each image or video placeholder
        expanded into its patch tokens), for a run's ``prompts.jsonl``."""
        text = self._text(request)
        ids = self._inputs([text], [request.frames])["input_ids"][0].tolist()
        return {"text": text, "input_ids": ids, "frames_as": self.frames_as,
                "input_ids_expanded": True}  # fmt: skip

    def _inputs(self, texts: Sequence[str], frames: Sequence):
        """The processor's tensors for texts with their frames (one clip per text)."""
        import numpy as np

        kwargs: dict = {"text": list(texts), "return_tensors": "pt", "padding": True}
        kwargs["add_special_tokens"] = False  # the chat template wrote them
        if self.frames_as == "video":
            kwargs["videos"] = [np.asarray(f) for f in frames]
        else:
            from PIL import Image

            kwargs["images"] = [[Image.fromarray(np.asarray(x)) for x in f] for f in frames]
        inputs = self.processor(**kwargs)
        inputs.pop("token_type_ids", None)
        return inputs.to(self.model.device)

    def _forward(self, inputs, *, last_only: bool):
        import torch

        floats = {
            k: v.to(self.model.dtype) if v.is_floating_point() else v for k, v in inputs.items()
        }
        with torch.no_grad():
            if last_only:
                try:
                    return self.model(**floats, logits_to_keep=1).logits
                except TypeError:  # a model without logits_to_keep
                    pass
            return self.model(**floats).logits

    # -- scoring ----------------------------------------------------------------------------

    def _within_vocab(self, logits):
        """Logits with the rows past the tokenizer (padding rows of the embedding) at -inf."""
        from verbnoun.model.inference import within_vocab

        return within_vocab(logits, len(self.tokenizer))

    def letter_token_ids(self, letter: str) -> list[int]:
        """The single tokens of ``letter`` written with and without a leading space."""
        if letter not in self.letter_ids:
            ids = []
            for form in (letter, " " + letter):
                encoded = self.tokenizer.encode(form, add_special_tokens=False)
                if len(encoded) == 1 and encoded[0] not in ids:
                    ids.append(encoded[0])
            if not ids:
                raise VerbnounError(
                    f"{self.source.path}: option letter {letter!r} is not a single token of this "
                    "model's tokenizer; use --scoring text or generate"
                )
            self.letter_ids[letter] = ids
        return self.letter_ids[letter]

    def answer(self, requests: Sequence[Request]) -> list[Reply]:
        if not requests:
            return []
        texts = [self._text(r) for r in requests]
        frames = [r.frames for r in requests]
        if self.options.mode == "generate":
            return self._generate(texts, frames)
        if self.options.mode == "letters":
            return self._letters(requests, texts, frames)
        return [self._option_text(r, t) for r, t in zip(requests, texts, strict=True)]

    def _letters(self, requests, texts, frames) -> list[Reply]:
        from verbnoun.bench.prompts import letter

        logits = self._forward(self._inputs(texts, frames), last_only=True)
        logp = self._within_vocab(logits[:, -1].float()).log_softmax(-1)
        replies = []
        for row, request in enumerate(requests):
            scores = []
            for index in range(len(request.question.options)):
                ids = self.letter_token_ids(letter(index))
                scores.append(float(logp[row, ids].logsumexp(0)))
            best = max(range(len(scores)), key=scores.__getitem__)
            replies.append(Reply(letter(best), scores=scores))
        return replies

    def _option_text(self, request: Request, text: str) -> Reply:
        """Mean log-likelihood of each option's ``X. text`` after the prompt (one batch)."""
        from verbnoun.bench.prompts import letter, mqa_answer

        answers = [mqa_answer(i, t) for i, t in enumerate(request.question.option_texts)]
        prompt_ids = self._inputs([text], [request.frames])["input_ids"][0].tolist()
        inputs = self._inputs([text + a for a in answers], [request.frames] * len(answers))
        logits = self._within_vocab(self._forward(inputs, last_only=False).float())
        logits = logits.log_softmax(-1)
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        scores = []
        for row in range(len(answers)):
            real = ids[row][mask[row].bool()].tolist()
            if real[: len(prompt_ids)] != prompt_ids:
                raise VerbnounError(
                    f"question {request.question.id}: the tokenizer merges the answer into the "
                    "prompt; use --scoring letters or generate"
                )
            count = len(real) - len(prompt_ids)
            length = ids.shape[1]
            positions = range(length - count, length)  # left padding: the answer ends each row
            total = sum(float(logits[row, p - 1, ids[row, p]]) for p in positions)
            scores.append(total / max(count, 1))
        best = max(range(len(scores)), key=scores.__getitem__)
        return Reply(letter(best), scores=scores)

    def _generate(self, texts, frames) -> list[Reply]:
        import torch

        inputs = self._inputs(texts, frames)
        floats = {
            k: v.to(self.model.dtype) if v.is_floating_point() else v for k, v in inputs.items()
        }
        with torch.no_grad():
            out = self.model.generate(
                **floats, max_new_tokens=self.options.max_new_tokens, do_sample=False,
                logits_processor=_within_vocab_processor(len(self.tokenizer)),
            )  # fmt: skip
        new = out[:, inputs["input_ids"].shape[1] :]
        decoded = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return [Reply(text.strip()) for text in decoded]


def chat_text(processor, frames_as: str, n_frames: int, request: Request) -> str:
    """The family's chat text of a request (its chat template): one user message, the frames
    first (one video part, or one image part per frame), then our user turn."""
    from verbnoun.evaluate.openai_adapter import served_user_text

    parts = [{"type": "video"}] if frames_as == "video" else [{"type": "image"}] * n_frames
    content = [*parts, {"type": "text", "text": served_user_text(request)}]
    messages = [{"role": "user", "content": content}]
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def shown_prompt(settings: dict, request: Request, n_frames: int) -> dict:
    """What a run's model was given for ``request``, from the run's ``model_settings`` alone
    (the processor is loaded, no weights): the chat text, and its input ids before the processor
    expands each image or video placeholder (the expansion needs the frames; a run's
    ``prompts.jsonl`` holds the expanded ids of one question per template)."""
    source = resolve_model(settings["path"])
    processor = load_processor(source.path)
    text = chat_text(processor, settings["frames_as"], n_frames, request)
    ids = processor.tokenizer(text, add_special_tokens=False)["input_ids"]
    return {"text": text, "input_ids": list(ids), "frames_as": settings["frames_as"],
            "input_ids_expanded": False}  # fmt: skip


def _within_vocab_processor(limit: int):
    """A logits processor for ``generate`` that puts the rows at and past ``limit`` (the
    tokenizer's length: the padding rows of the embedding) at -inf at every step, as
    ``letters`` and ``text`` scoring do: a padded vocabulary is never generated."""
    from transformers import LogitsProcessor, LogitsProcessorList

    from verbnoun.model.inference import within_vocab

    class WithinVocab(LogitsProcessor):
        def __call__(self, input_ids, scores):
            return within_vocab(scores, limit)

    return LogitsProcessorList([WithinVocab()])


def _sha256(text: str | None) -> str | None:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest() if text else None


def _fingerprint(directory: Path) -> str:
    from verbnoun.runs import checkpoint_fingerprint

    return checkpoint_fingerprint(directory)


def _build(settings: HfSettings, data: DataSettings) -> HfAdapter:
    from dataclasses import replace

    from verbnoun.evaluate.local_adapter import rank_device

    if not settings.model:
        raise VerbnounError("--model hf needs --hf-model DIR_OR_ID")
    return HfAdapter(
        replace(settings, model=str(settings.model), device=rank_device(settings.device))
    )


SPEC = AdapterSpec(
    "hf", HfSettings, _build, needs=frozenset({"frames"}), text_answers="generate",
    options={"model": "hf_model", "mode": "scoring", "frames_as": "hf_frames"},
)  # fmt: skip
