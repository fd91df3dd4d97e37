"""Annotate modes by name: how an ``eval`` adapter is asked about a window (``--mode``).

Each :class:`AnnotateMode` declares its name, a one-line help, the settings it reads (fields of
:class:`ModeInputs` besides the adapter, the behaviours, frames and size) and what it needs
(``specialist``: a specialist folder; ``verbs_nouns``: verb/noun behaviours), and
``build(inputs) -> WindowModel``. :func:`window_model` refuses what a mode lacks in one line,
then builds it; the CLI's ``--mode`` choices are :func:`names`.

Adding a mode is one module (a :class:`~verbnoun.annotate.models.WindowModel`) and one
:func:`register` line at the end of this file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verbnoun.errors import VerbnounError
from verbnoun.lookup import Entry, Registry

if TYPE_CHECKING:  # the window models load numpy: imported when a mode is built
    from verbnoun.annotate.models import WindowModel
    from verbnoun.annotate.vocabulary import Behaviours

LACKING = {  # what a refusal says when a need is not met
    "specialist": "needs --specialist DIR",
    "verbs_nouns": "maps to verbs and nouns: give a verb/noun --dataset",
}


@dataclass(frozen=True)
class ModeInputs:
    """What a mode may be built from."""

    adapter: Any  # an eval adapter (verbnoun.evaluate.adapters.Adapter)
    behaviours: Behaviours
    frames: int = 8
    size: int | None = None
    top_k: int = 5
    specialist: Path | None = None


class AnnotateMode(Entry):
    """An annotate mode: ``build(ModeInputs) -> WindowModel``; ``settings``: the ModeInputs
    fields it reads besides the adapter, the behaviours, frames and size."""

    NEEDS = tuple(LACKING)


MODES: Registry[AnnotateMode] = Registry("annotate mode")
register = MODES.add  # add one: register(AnnotateMode(...)), at the end of this file
names = MODES.names  # the CLI's choices, in registration order
get = MODES.lookup  # an unknown name: a one-line error naming the choices


def window_model(name: str, inputs: ModeInputs) -> WindowModel:
    """The window model of mode ``name``; a need it lacks is a one-line error."""
    mode = get(name)
    if "specialist" in mode.needs and inputs.specialist is None:
        raise VerbnounError(f"--mode {name} {LACKING['specialist']}")
    behaviours = inputs.behaviours
    if "verbs_nouns" in mode.needs and (behaviours.verbs is None or behaviours.nouns is None):
        raise VerbnounError(f"--mode {name} {LACKING['verbs_nouns']}")
    return mode.build(inputs)


# --------------------------------------------------------------------------- the modes


def _asked(style: str) -> Callable[[ModeInputs], WindowModel]:
    """A multiple-choice mode of :class:`AdapterModel` (``choice``, ``two-stage``, ``chunks``)."""

    def build(i: ModeInputs) -> WindowModel:
        from verbnoun.annotate.models import AdapterModel, SpecialistModel

        specialist = None
        if style == "two-stage":
            specialist = SpecialistModel(i.specialist, i.behaviours)
        return AdapterModel(i.adapter, i.behaviours, mode=style, frames=i.frames, size=i.size,
                            specialist=specialist, top_k=i.top_k)  # fmt: skip

    return build


def _open(i: ModeInputs) -> WindowModel:
    from verbnoun.annotate.models import OpenModel
    from verbnoun.interpret.open_vocab import OpenVocabMapper

    assert i.behaviours.verbs is not None and i.behaviours.nouns is not None
    mapper = OpenVocabMapper(i.behaviours.verbs, i.behaviours.nouns)
    return OpenModel(i.adapter, mapper, frames=i.frames, size=i.size)


register(AnnotateMode("choice", "multiple choice over every behaviour (26 at most)",
                      _asked("choice")))  # fmt: skip
register(AnnotateMode("two-stage", "the specialist's top-k behaviours of the window as options",
                      _asked("two-stage"), needs=frozenset({"specialist"}),
                      settings=("top_k", "specialist")))  # fmt: skip
register(AnnotateMode("chunks", "option likelihood over all behaviours, 26 at a time",
                      _asked("chunks")))  # fmt: skip
register(AnnotateMode("open", "free narration mapped to (verb, noun) classes", _open,
                      needs=frozenset({"verbs_nouns"})))  # fmt: skip
