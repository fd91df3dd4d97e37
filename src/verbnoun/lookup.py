"""Things looked up by name: the registries of distractor strategies and annotate modes.

An :class:`Entry` declares a name, a one-line help, ``build`` and what it needs and reads.

A :class:`Registry` is a ``dict`` from name to entry (every entry has a ``name``), so callers
iterate, test membership and (tests) remove entries as with any mapping. :meth:`Registry.add`
refuses a name given twice; :meth:`Registry.lookup` turns an unknown name into the one-line
error the CLI prints, naming the choices; :meth:`Registry.names` are the CLI's choices, in the
order of registration.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from verbnoun.errors import VerbnounError


@dataclass(frozen=True)
class Entry:
    """What every registered thing declares: its name, a one-line help, ``build(inputs)``, what
    it needs (a subset of the class's ``NEEDS``) and the settings it reads."""

    NEEDS: ClassVar[tuple[str, ...]] = ()

    name: str
    help: str
    build: Callable[[Any], Any]
    needs: frozenset[str] = frozenset()
    settings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.needs) - set(self.NEEDS)
        if unknown:
            raise ValueError(f"{self.name!r}: unknown needs {sorted(unknown)}")


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(dict[str, T], Generic[T]):
    """Entries of one kind (``kind``: how errors call them, e.g. "distractor strategy")."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def add(self, entry: T) -> T:
        """Register ``entry`` under its name (once)."""
        if entry.name in self:
            raise ValueError(f"{self.kind} {entry.name!r} is registered twice")
        self[entry.name] = entry
        return entry

    @contextlib.contextmanager
    def added(self, entry: T) -> Iterator[T]:
        """``entry`` registered for the block only (a test, or a plugin tried once)."""
        self.add(entry)
        try:
            yield entry
        finally:
            del self[entry.name]

    def names(self) -> tuple[str, ...]:
        return tuple(self)

    def lookup(self, name: str) -> T:
        """The entry called ``name``; an unknown name is a one-line error naming the choices."""
        if name not in self:
            raise VerbnounError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self)}")
        return self[name]
