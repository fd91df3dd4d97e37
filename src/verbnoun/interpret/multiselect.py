"""Multi-select parsing: a reply that gives several options -> the set of options, never guessing.

A multi-select question (several behaviours in one clip) asks for every option that applies.
``parse_selection`` (the ``strict`` multi-select parser, version :data:`MULTI_PARSER_VERSION`)
reads the reply into a set of 0-based option indices, or ``None`` (*unparsed*), and says which
rule decided (:attr:`ParsedSelection.rule`):

* ``json``: a JSON object (or Python dict literal) whose ``answers`` / ``answer`` / ``choices`` /
  ``options`` / ``labels`` / ... field is a list (each element one option: ``["A", "C"]``,
  ``["A. eat", "C. walk"]``) or a text read by the rules below; or a bare JSON list ``["A", "C"]``.
* ``tag``: the last ``<answer>...</answer>``, or ``\\boxed{...}`` (several must agree).
* ``statement``: a list after an answer cue: ``The answers are A and C``, ``Answer: A, C``,
  ``Correct options: B; D``, ``I choose A and C`` (``The options are`` is no cue: it echoes the
  prompt), or after a correction (``Actually, C``). A cue in a negated clause (``I don't think
  the answers are A and C``) is none. Statements that give different sets make the reply
  unparsed, unless the last corrects the one before (``The answer is A. Actually, A and D.``,
  ``Correcting myself: ...``) and no doubt follows.
* ``list``: a line that is only a list (``A, C``, ``A and C``, ``(A) (C)`` is not: items need a
  separator), ``B. walk; D. eat`` (the training target's form), ``walk, eat`` (option texts),
  with commentary after it that hedges, negates and names no other option. Answer lines must
  all agree.
* ``single``: failing those, one option as the single-letter parser reads it (``I think B.``,
  ``It's B``): a set of one.

An item is an option letter (upper case; lower case only in brackets: ``(a)``, ``a)``), the letter
with its own text (``B. walk``), or an option's text, optionally tagged with its letter
(``walk (B)``). Separators: ``,`` ``;`` ``and`` ``&`` ``+`` ``plus`` ``as well as`` (``, and``
too); ``both`` may open the list. A single item is a set of one.

Never guessed (unparsed): alternatives (``A or C``, ``A/C``, ``A vs C``), hedges (``A and maybe
C``, ``A, C, possibly B``, ``could be A and C``), any negation in the list's sentence (``A and C,
not B``; ``neither``; ``none``), a letter outside the options or whose text names another option
(``B. eat`` when ``eat`` is D), ``all of the above``, a question (``A and C?``), statements or
answer lines that disagree.

The single-letter parser (:mod:`verbnoun.interpret.parsing`) is unchanged; this module reuses its
normalisation and its reading of one answer expression.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from verbnoun.interpret.parsing import (
    _AFTER_LETTER,
    _ANSWER_KEYS,
    _CORRECTION_CUES,
    _THINK,
    _expression,
    _json_documents,
    _json_keys,
    _negated_clause,
    _option_at,
    _options_in,
    _plain,
    _prepared,
    _Read,
    _tag_texts,
    parse_answer,
)

MULTI_PARSER_VERSION = "2"  # 2: a list goes on over a bare letter ("A and C apply")
RULES = ("json", "tag", "statement", "list", "single", "unparsed")


@dataclass(frozen=True)
class ParsedSelection:
    """The chosen options (0-based, a frozenset) or ``None`` when unparsed, and the rule."""

    indices: frozenset[int] | None
    rule: str


UNPARSED = ParsedSelection(None, "unparsed")

_LIST_KEYS = ("answers", "selected_answers", "selected_options", "choices", "options", "letters",
              "labels", "actions", "behaviours", "behaviors", *_ANSWER_KEYS)  # fmt: skip
_OPENER = re.compile(
    r"[ \t]*(?:(?:both|the)[ \t]+)?(?:(?:options?|choices?|letters?)[ \t]*:?[ \t]+)?", re.I
)
_SEPARATOR = re.compile(
    r"[ \t]*(?:,[ \t]*(?:(?:and|&|plus|as[ \t]+well[ \t]+as)(?![\w'])[ \t]*)?|;[ \t]*|&[ \t]*|\+"
    r"[ \t]*|(?:and|plus|as[ \t]+well[ \t]+as)(?![\w'])[ \t]*)(?:(?:options?|choices?)[ \t]+)?",
    re.I,
)
_ALTERNATIVE = re.compile(r"[ \t]*(?:,[ \t]*)?(?:\bor\b|/|\bvs\b\.?|\bversus\b)", re.I)
# a letter in a list: upper case, or lower case in brackets; what may follow it
_LIST_LETTER = re.compile(r"([(\[][ \t]*([A-Za-z])[ \t]*[)\]]|([a-z])\)|([A-Z]))(?![\w'])")
_LETTER_END = re.compile(
    r"[ \t]*(?:[.:)]?[ \t]*(?:[,;&+]|and\b|plus\b|as\s+well\b|$|\n)|[.!])", re.I
)
_HEDGES = re.compile(
    r"\b(?:or|alternatively|either|could|might|may|maybe|possibly|perhaps|probably|likely|"
    r"unsure|uncertain|unclear|guess)\b|\?",
    re.I,
)
_NEGATIONS = re.compile(
    r"n't\b|\b(?:not|no|never|neither|nor|none|cannot|except|without|incorrect|wrong)\b", re.I
)
_ALL = re.compile(r"\ball\s+(?:of\s+)?(?:the\s+)?(?:above|options|choices)\b", re.I)
_QUALIFIED = r"(?:my|final|correct|right|best|selected|chosen|applicable|matching|true)\s+"
_COPULA = r"(?:\s+(?:are|is|would\s+be|should\s+be|will\s+be))"
_CUES = re.compile(  # "options" alone is no cue: "The options are: A. ..." echoes the prompt
    rf"\b(?:(?:the|{_QUALIFIED[:-3]})\s+)*(?:answers?|ans\.?)(?:{_COPULA}\s*[:=\-–—]?|\s*[:=\-–—])\s*"
    rf"|\b(?:the\s+)?(?:{_QUALIFIED})+(?:choices?|options?|selections?|letters?|labels?|"
    rf"behaviou?rs?|actions?)(?:\s+(?:shown|performed|visible|seen|that\s+apply|applying))?"
    rf"(?:{_COPULA}\s*[:=\-–—]?|\s*[:=\-–—])\s*"
    r"|\b(?:I|we)(?:\s+would|\s+will|'d|'ll)?\s+(?:choose|pick|select|go\s+with|opt\s+for)\s*:?\s*",
    re.I,
)
_SENTENCE_END = re.compile(r"(?<![A-Z])[.!?](?=\s|$)|\n")


def _letter_item(s: str, pos: int, options: Sequence[str]) -> _Read | None:
    """A letter as a list item (``A`` followed by a separator, ``(a)``, ``B. walk``)."""
    match = _LIST_LETTER.match(s, pos)
    if match is None:
        return None
    letter = (match.group(2) or match.group(3) or match.group(4)).upper()
    end = match.end()
    index = ord(letter) - ord("A")
    index = index if 0 <= index < len(options) else None
    after = _AFTER_LETTER.match(s, end)
    named = _option_at(s, after.end(), options) if after.end() > end or match.group(4) is None \
        else None  # fmt: skip
    if named is not None:
        if named[0] != index:
            return _Read(None, "letter+text", named[1])  # the text is another option's
        return _Read(index, "letter+text", named[1])
    if match.group(4) is not None and not _LETTER_END.match(s, end):
        return None  # "A person ...", "I think ..."
    tail = re.match(r"[ \t]*[.:)](?![\w])", s[end:])
    return _Read(index, "letter", end + (tail.end() if tail else 0))


def _item(s: str, pos: int, options: Sequence[str]) -> _Read | None:
    found = _letter_item(s, pos, options)
    if found is not None:
        return found
    return _expression(s, pos, options, lower=False, loose=False)


def _read_list(
    s: str, pos: int, options: Sequence[str]
) -> tuple[frozenset[int] | None, int] | None:
    """``(indices, end)`` of a list starting at ``s[pos]``: ``None`` when no item starts there;
    indices ``None`` when the list names something that is no option or offers alternatives."""
    pos = _OPENER.match(s, pos).end()
    found: set[int] = set()
    read = _item(s, pos, options)
    if read is None:
        return None
    while True:
        if read.index is None:
            return None, read.end
        found.add(read.index)
        if _ALTERNATIVE.match(s, read.end):
            return None, read.end
        separator = _SEPARATOR.match(s, read.end)
        if separator is None or separator.end() == read.end:
            return frozenset(found), read.end
        following = _item(s, separator.end(), options) or _bare_letter(s, separator.end(), options)
        if following is None:
            return frozenset(found), read.end
        read = following


def _bare_letter(s: str, pos: int, options: Sequence[str]) -> _Read | None:
    """An option's capital letter in list position, after a separator, with words after it
    (``A and C apply``, ``A, C are shown``): an item of the list, which the commentary after
    it does not end. ``I`` stays a word (``A, and I think ...``)."""
    match = re.match(r"([A-Z])(?![\w'])", s[pos:])
    if match is None or match.group(1) == "I":
        return None
    index = ord(match.group(1)) - ord("A")
    return _Read(index if index < len(options) else None, "letter", pos + 1)


def _mentions_outside(s: str, chosen: frozenset[int], options: Sequence[str]) -> bool:
    """Whether ``s`` names an option outside ``chosen`` (its letter or its text)."""
    for match in re.finditer(r"(?<![\w'])(?:[A-Z]|[(\[][A-Za-z][)\]])(?![\w'])", s):
        read = _letter_item(s, match.start(), options)
        if read is not None and read.index not in chosen:
            return True
    # a bare capital letter of an option ("E is also visible"); A and I are also words
    for match in re.finditer(r"(?<![\w'])([B-HJ-Z])(?![\w'])", s):
        index = ord(match.group(1)) - ord("A")
        if index < len(options) and index not in chosen:
            return True
    return bool(_options_in(s, options) - chosen)


def _clean_rest(rest: str, chosen: frozenset[int], options: Sequence[str]) -> bool:
    """Whether what follows a list in its sentence leaves it standing: no hedge, no negation,
    no other option named."""
    return not (
        _HEDGES.search(rest) or _NEGATIONS.search(rest) or _mentions_outside(rest, chosen, options)
    )


def _whole(text: str, options: Sequence[str]) -> frozenset[int] | None:
    """The set of a text that is only a list (closing punctuation allowed), else ``None``."""
    text = text.strip()
    if not text or _ALL.search(text) or _NEGATIONS.search(text) or _HEDGES.search(text):
        return None
    read = _read_list(text, 0, options)
    if read is None or read[0] is None:
        return None
    if text[read[1] :].strip(" \t.!)\"']") != "":
        return None
    return read[0]


def _line_answer(line: str, options: Sequence[str]) -> frozenset[int] | None:
    """A line that starts with a list, alone or with commentary that leaves it standing."""
    if _ALL.search(line):
        return None
    read = _read_list(line, 0, options)
    if read is None or read[0] is None:
        return None
    rest = line[read[1] :]
    if re.match(r"[ \t]*\?", rest):
        return None
    stop = _SENTENCE_END.search(rest)
    sentence_rest = rest[: stop.start()] if stop else rest
    if rest.strip(" \t.!)\"'-–—:") and not _clean_rest(rest, read[0], options):
        return None
    if not _clean_rest(sentence_rest, read[0], options):
        return None
    return read[0]


def _statements(plain: str, options: Sequence[str]) -> list[tuple[int, frozenset[int] | None]]:
    """``(position, set)`` of each answer statement, in order (``None``: one that offers
    alternatives, hedges or negates)."""
    found = []
    cues = sorted(
        [*_CUES.finditer(plain), *_CORRECTION_CUES.finditer(plain)], key=lambda m: m.start()
    )
    for cue in cues:
        if _negated_clause(plain, cue.start()):
            continue
        read = _read_list(plain, cue.end(), options)
        if read is None:
            continue
        indices, end = read
        stop = _SENTENCE_END.search(plain, end - 1 if plain[end - 1 : end] in ".!" else end)
        rest = plain[end : stop.start() if stop else len(plain)]
        if stop is not None and plain[stop.start()] == "?":
            continue
        if indices is not None and (
            _ALL.search(plain, cue.end(), end + 40) or not _clean_rest(rest, indices, options)
        ):
            indices = None
        found.append((cue.start(), indices))
    return found


_CORRECTED = re.compile(_CORRECTION_CUES.pattern + r"|\bcorrecting\s+myself\b", re.I)
_DOUBT = re.compile(r"\b(?:not\s+(?:sure|certain)|unsure|uncertain|can'?t\s+tell|cannot\s+tell|"
                    r"don'?t\s+know|hard\s+to\s+(?:say|tell))\b", re.I)  # fmt: skip


def _final(plain: str, statements: list[tuple[int, frozenset[int] | None]]):
    """The set the statements settle on: all agree, or the last one is a correction of the one
    before (``The answer is A. Actually, C.``; ``Correcting myself: the answers are B and D``)
    and no doubt follows it; else ``None`` (a contradiction stays unparsed)."""
    sets = [indices for _, indices in statements]
    final = sets[-1]
    if final is None:
        return None
    if len(set(sets)) == 1:
        return final
    if len(statements) < 2:
        return None
    corrected = _CORRECTED.search(plain, statements[-2][0] + 1, statements[-1][0] + 40)
    if corrected is None or _DOUBT.search(plain, statements[-1][0]):
        return None
    return final


def _json_value(text: str) -> tuple[bool, object]:
    """``(True, value)`` of a JSON reply's answer field (a list reply is its own value)."""
    for data in _json_documents(text, openers="{["):
        if isinstance(data, list):
            return True, data
        if not isinstance(data, dict):
            continue
        keys = _json_keys(data)
        for key in _LIST_KEYS:
            if key in keys:
                return True, keys[key]
    return False, None


def parse_selection(output: str, options: Sequence[str]) -> ParsedSelection:
    """Parse a reply to a multi-select question against its option texts (in letter order);
    see the module's docstring for what is read and what is never guessed."""
    return _parse(output, options, depth=0)


def _parse(output: str, options: Sequence[str], depth: int) -> ParsedSelection:
    text = _prepared(output)
    if depth < 2:
        found, value = _json_value(text)
        if found:
            if isinstance(value, str):
                inner = _parse(value, options, depth + 1)
                return ParsedSelection(inner.indices, "json") if inner.indices else UNPARSED
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                sets = [_whole(_plain(v), options) for v in value]
                if all(s is not None and len(s) == 1 for s in sets):
                    return ParsedSelection(frozenset().union(*sets), "json")  # type: ignore[arg-type]
            return UNPARSED
        tagged = _tag_texts(text)
        if tagged:
            reads = [_parse(tag, options, depth + 1) for tag in tagged]
            sets = {r.indices for r in reads}
            if len(sets) == 1 and None not in sets:
                return ParsedSelection(reads[0].indices, "tag")
            return UNPARSED
    plain = _plain(_THINK.sub(" ", text))
    if not plain:
        return UNPARSED
    statements = _statements(plain, options)
    texts = [line for line in plain.split("\n") if line.strip()]
    lines = [  # a line that is only a list; the first or last may go on with commentary
        s for k, line in enumerate(texts)
        if (s := _line_answer(line, options) if k in (0, len(texts) - 1) else _whole(line, options))
    ]  # fmt: skip
    if statements:
        chosen = _final(plain, statements)
        if chosen is None:
            return UNPARSED
        last = plain.split("\n")[-1]
        last_set = _line_answer(last, options)
        if last_set is not None and last_set != chosen:
            return UNPARSED  # the last line answers otherwise
        return ParsedSelection(chosen, "statement")
    if len(set(lines)) > 1:
        return UNPARSED
    if lines:
        return ParsedSelection(lines[0], "list")
    single = parse_answer(output, options)  # one option, stated as the strict parser reads it
    if single.index is not None:
        return ParsedSelection(frozenset({single.index}), "single")
    return UNPARSED
