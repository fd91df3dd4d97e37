"""Model adapters by name: the one lookup through which ``verbnoun eval``, ``verbnoun
annotate``, the notebook API (``lva.eval``) and the lmms-eval plugin build an adapter.

:data:`ADAPTERS` maps each name to its :class:`~verbnoun.evaluate.adapters.AdapterSpec`
(settings dataclass, needs, whether it writes text, ``build``); the CLI's ``--model`` choices are
its names (read each time a command is built). Adding an adapter is one module that defines
the adapter and its ``SPEC``, and one ``ADAPTERS.add`` line below (from outside the package, the
same call before the command runs).

Options arrive flat, as the command line names them (``seed``, ``api_model``, ``scoring``);
:func:`settings_for` fills a spec's settings from the ones it takes and leaves the rest alone.
Nothing here loads a model: :func:`build_adapter` does, when asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any

from verbnoun.errors import VerbnounError
from verbnoun.evaluate import adapters, hf_adapter, local_adapter, openai_adapter
from verbnoun.evaluate.adapters import Adapter, AdapterSpec, DataSettings
from verbnoun.lookup import Registry

ADAPTERS: Registry[AdapterSpec] = Registry("model")
ADAPTERS.add(adapters.RANDOM)
ADAPTERS.add(adapters.SPECIALIST)
ADAPTERS.add(adapters.PRIOR)
ADAPTERS.add(openai_adapter.SPEC)
ADAPTERS.add(local_adapter.SPEC)
ADAPTERS.add(hf_adapter.SPEC)


def adapter_spec(name: str) -> AdapterSpec:
    """The spec registered as ``name`` (a one-line error naming the choices otherwise)."""
    return ADAPTERS.lookup(name)


def option_names() -> set[str]:
    """Every option some adapter's settings take (the flat names of the command line)."""
    return {spec.options.get(f.name, f.name) for spec in ADAPTERS.values()
            for f in fields(spec.settings)}  # fmt: skip


def settings_for(name: str, options: Mapping[str, Any]) -> Any:
    """The settings of adapter ``name`` filled from flat ``options`` (others are ignored); a
    field without a default that no option gives is ``None``, for ``build`` to refuse."""
    spec = adapter_spec(name)
    values = {}
    for f in fields(spec.settings):
        key = spec.options.get(f.name, f.name)
        if key in options:
            values[f.name] = options[key]
        elif f.default is MISSING and f.default_factory is MISSING:
            values[f.name] = None
    return spec.settings(**values)


def build_adapter(name: str, settings: Any = None, data: DataSettings | None = None) -> Adapter:
    """Build adapter ``name`` from its settings (default: the settings' defaults) and the run's
    data set (``data``)."""
    spec = adapter_spec(name)
    if settings is None:
        settings = settings_for(name, {})
    if not isinstance(settings, spec.settings):
        raise VerbnounError(
            f"model {name!r} takes {spec.settings.__name__}, not {type(settings).__name__}"
        )
    return spec.build(settings, data or DataSettings())
