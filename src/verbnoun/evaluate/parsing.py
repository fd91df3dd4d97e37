"""Answer parsing: a model's raw output -> the chosen option, deterministically, never guessing.

``parse_answer`` (version :data:`PARSER_VERSION`) accepts, in this order:

1. JSON ``{"answer": ...}`` (the structured-output form), whose value is parsed by the rules below;
2. a letter form: ``B``, ``B.``, ``(B)``, ``B)``, ``Answer: B``, ``The answer is B.``, ``B. open
   door`` (a letter followed by text must not contradict itself: when the text names a different
   option exactly, the answer is ambiguous and stays unparsed);
3. the option text alone (case-insensitive, surrounding quotes and a final period ignored).

Anything else is *unparsed* (``index is None``): counted and reported, never replaced by a guess.

``parse_answer_original`` reproduces the LLaVAction release's rule for comparison with the paper:
take the last ``X. text`` match in the output, cut the text at its first period, and compare that
text (not the letter) with the options' texts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

PARSER_VERSION = "1"
PARSERS = ("strict", "original")

_LETTER_ALONE = re.compile(r"^\(?([A-Z])\)?[.):]?$")
_LETTER_PREFIXED = re.compile(
    r"^(?:the\s+)?(?:correct\s+)?(?:answer|option|choice)(?:\s+is)?\s*[:：]?\s*\(?([A-Z])\)?[.):]?"
    r"(?:\s+(.*))?$",
    re.IGNORECASE | re.DOTALL,
)
_LETTER_THEN_TEXT = re.compile(r"^\(?([A-Z])[.):]\)?\s+(.+)$", re.DOTALL)
_ORIGINAL = re.compile(r"(?=\b([A-Z])\.\s*([^\n]*))")


@dataclass(frozen=True)
class ParsedAnswer:
    """The chosen option (0-based) or ``None`` when unparsed, and which rule decided."""

    index: int | None
    rule: str  # "json", "letter", "letter+text", "text", "original", "unparsed"


def _normalise(text: str) -> str:
    text = " ".join(text.strip().split()).lower()
    text = text.strip("\"'`")
    return text[:-1].rstrip() if text.endswith(".") else text


def _text_index(text: str, options: Sequence[str]) -> int | None:
    wanted = _normalise(text)
    matches = [i for i, option in enumerate(options) if _normalise(option) == wanted]
    return matches[0] if len(matches) == 1 else None


def _letter_index(letter: str, options: Sequence[str]) -> int | None:
    index = ord(letter) - ord("A")
    return index if 0 <= index < len(options) else None


def parse_answer(output: str, options: Sequence[str]) -> ParsedAnswer:
    """Parse a raw model output against the question's option texts (in letter order)."""
    text = output.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("answer"), str):
            inner = parse_answer(data["answer"], options)
            return ParsedAnswer(inner.index, "json" if inner.index is not None else "unparsed")
    match = _LETTER_ALONE.match(text)
    if match:
        index = _letter_index(match.group(1), options)
        return ParsedAnswer(index, "letter" if index is not None else "unparsed")
    for pattern in (_LETTER_PREFIXED, _LETTER_THEN_TEXT):
        match = pattern.match(text)
        if not match:
            continue
        index = _letter_index(match.group(1), options)
        rest = match.group(2)
        if index is None:
            return ParsedAnswer(None, "unparsed")
        if not rest:
            return ParsedAnswer(index, "letter")
        named = _text_index(rest, options)
        if named is None or named == index:
            return ParsedAnswer(index, "letter+text")
        return ParsedAnswer(None, "unparsed")  # the letter and the text disagree
    index = _text_index(text, options)
    return ParsedAnswer(index, "text" if index is not None else "unparsed")


def parse_answer_original(output: str, options: Sequence[str]) -> ParsedAnswer:
    """The original release's rule: last ``X. text`` match, text cut at its first period."""
    matches = _ORIGINAL.findall(output)
    if not matches:
        return ParsedAnswer(None, "unparsed")
    _, text = matches[-1]
    text = text.split(".")[0].strip()
    index = next((i for i, option in enumerate(options) if option.strip() == text), None)
    return ParsedAnswer(index, "original" if index is not None else "unparsed")


def get_parser(name: str):
    """The parser named ``strict`` (default) or ``original``."""
    if name == "strict":
        return parse_answer
    if name == "original":
        return parse_answer_original
    raise ValueError(f"unknown parser {name!r}; choose one of {', '.join(PARSERS)}")
