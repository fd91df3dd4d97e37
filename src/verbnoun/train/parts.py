"""Which parts of the model train, and at which learning rate: the release's rules (SPEC 10).

A model has three parts, named by its parameters' (released) names, as LLaVA-NeXT's
``mm_tunable_parts`` names them:

==================  ========================  ==================================================
ours                the release               parameters
==================  ========================  ==================================================
``vision_tower``    ``mm_vision_tower``       names containing ``vision_tower``
``projector``       ``mm_mlp_adapter``        names containing ``mm_projector``
``language_model``  ``mm_language_model``     every other one: the LM, its embeddings and head,
                                              ``image_newline``, the action token and the
                                              verb / noun / action heads
==================  ========================  ==================================================

The action token (``model.action_supervision``) and the verb / noun / action heads are new
parameters that the release trains with the language model (its rule puts every parameter that
is neither tower nor projector there). They can also be named alone as ``action_heads`` (ours,
no release name), e.g. to train them on a frozen language model: a parameter trains when any
listed part holds it. The release's ``mm_vision_resampler`` is accepted and holds nothing here
(the model has no resampler).

``model.tunable_parts`` takes a list of names or the release's comma-separated string
(``"mm_vision_tower,mm_mlp_adapter,mm_language_model"``); left ``null``, a run that starts from
``model.checkpoint`` takes the ``mm_tunable_parts`` of that checkpoint's ``config.json`` (as the
release writes it), and every part trains when it has none. Frozen parameters have
``requires_grad`` off and are in no optimizer group, so neither the optimizer nor its saved state
(``trainer.pt``, or DeepSpeed's optimizer files) holds them.

Learning rates per part: ``optim.lr`` (the language model and the action heads, the release's
base ``learning_rate``), ``optim.vision_lr`` (the release's ``mm_vision_tower_lr``) and
``optim.projector_lr`` (``mm_projector_lr``); ``null`` means ``optim.lr``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from torch import nn

PARTS = ("vision_tower", "projector", "language_model", "action_heads")
RELEASE_NAMES = {
    "mm_vision_tower": ("vision_tower",),
    "mm_mlp_adapter": ("projector",),
    "mm_language_model": ("language_model",),
    "mm_vision_resampler": (),
}
ACTION_PARAMETERS = ("model.action_supervision", "verb_head.", "noun_head.", "action_head.")
# optimizer groups, in this order: the part whose learning rate a parameter takes
LR_PARTS = ("language", "projector", "vision")


def part_names(value: str | list[str] | None) -> list[str] | None:
    """The listed parts as our names, in :data:`PARTS` order; ``ValueError`` names a bad one."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    wanted: set[str] = set()
    for item in items:
        name = str(item).strip()
        if name in PARTS:
            wanted.add(name)
        elif name in RELEASE_NAMES:
            wanted.update(RELEASE_NAMES[name])
        else:
            known = ", ".join([*PARTS, *RELEASE_NAMES])
            raise ValueError(f"unknown part {name!r} (one of {known})")
    if not wanted:
        raise ValueError(f"{value!r} names no part that has parameters: nothing would train")
    return [part for part in PARTS if part in wanted]


def parts_of(name: str) -> set[str]:
    """Every part that holds the parameter ``name``."""
    if "vision_tower" in name:
        return {"vision_tower"}
    if "mm_projector" in name:
        return {"projector"}
    if name.startswith(ACTION_PARAMETERS):
        return {"language_model", "action_heads"}
    return {"language_model"}


def lr_part(name: str) -> str:
    """Which learning rate the parameter ``name`` takes: one of :data:`LR_PARTS`."""
    if "vision_tower" in name:
        return "vision"
    if "mm_projector" in name:
        return "projector"
    return "language"


def checkpoint_parts(directory: str | Path) -> str | None:
    """The ``mm_tunable_parts`` a checkpoint's ``config.json`` records (``None``: none)."""
    from verbnoun.errors import CheckpointFileError
    from verbnoun.fileio import read_json

    path = Path(directory) / "config.json"
    if not path.is_file():
        return None
    value = read_json(path, expect=dict, error=CheckpointFileError).get("mm_tunable_parts")
    if value is not None and not isinstance(value, str):
        raise CheckpointFileError(path, f"mm_tunable_parts: expected a string, got {value!r}")
    return value or None


def freeze(model: nn.Module, parts: Iterable[str]) -> dict[str, int]:
    """Train exactly the parameters the listed parts hold; the number of parameters (elements)
    left trainable and frozen. Call before the optimizer is built."""
    wanted = set(parts)
    counts = {"trainable": 0, "frozen": 0}
    for name, param in model.named_parameters():
        param.requires_grad_(bool(parts_of(name) & wanted))
        counts["trainable" if param.requires_grad else "frozen"] += param.numel()
    return counts
