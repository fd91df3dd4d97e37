"""Answer parsing: a model's raw output -> the chosen option, deterministically, never guessing.

``parse_answer`` (the ``strict`` parser, version :data:`PARSER_VERSION`) reads a reply the way a
careful person would, and records which rule decided (:attr:`ParsedAnswer.rule`, one of
:data:`RULES`):

* ``json``: a JSON object (or a Python dict literal) with an ``answer`` field (or
  ``final_answer``, ``answer_letter``, ``choice``, ``option``, ...), the whole reply, inside a
  code fence or at its end; the field's text is read by the rules below (a number is no letter).
* ``tag``: the last ``<answer>...</answer>``, or every ``\\boxed{...}`` (they must agree).
* ``statement``: an answer statement, and of several the last one (the final answer wins):
  ``The answer is B``, ``Answer: B``, ``Final answer: D``, ``the correct option is C``, ``I'd go
  with B``, ``It's B``, ``I think B.``, ``Probably B.``, ``The action being performed is close
  door (B)``, ``which corresponds to option B``, ``B is the correct answer``, ``B would be my
  answer``, ``not A but B``, a correction (``..., actually, B.``), ``答案：B``. A statement in a
  negated clause (``I don't think the answer is A``) is none; the final one is taken back by a
  later negation of its letter (``... so it is not B``), another letter offered after it
  (``B. Or maybe C.``), or doubt after statements that disagree.
* ``letter``, ``letter+text``, ``text``: a one-line reply that is the answer: ``B``, ``B.``,
  ``(B)``, ``[B]``, ``B)``, ``B:``, ``Option B``, ``B. close door``, ``(b) close door``,
  ``close door (B)``, ``close door``, with or without commentary after it that negates nothing
  but other options (``B. close door - the hand pushes it shut``, ``B (not A)``).
* ``line``: in a longer reply without an answer statement, its answer lines (a line that is only
  an answer, a first or last line that starts with one, a letter alone ending the reply: ``...
  the door. B``); they must all agree. After a statement, a last line that answers otherwise
  makes the reply unparsed.

Before that the reply is normalised: NFKC (full-width letters and punctuation), typographic
quotes, chat-template end tokens, ``<think>`` blocks, markdown emphasis, code, headings, list
bullets and LaTeX ``$``. An answer's letter is one of the question's letters, upper or lower
case; a lower-case one only where it cannot be a word (``(a)``, ``a)``, ``a.``, alone, after
``answer``), and ``A`` / ``I`` followed by a word only when that word starts its own option text,
a conjunction (``because``) or a predicate (``is the correct answer``).

Never guessed (*unparsed*, ``index is None``): two different letters offered (``A or B``, ``B/C``,
``B, but C is also possible``), negations (``not A``, ``Neither A nor B``, ``It is not B``), a
letter whose text names another option (``B. open door`` when ``open door`` is A), a letter
outside the options, a question (``B?``), hedges without a choice, answer lines that disagree.

``parse_answer_original`` reproduces the LLaVAction release's scoring for comparison with the
paper (:func:`original_prediction`, their ``process_raw_pred``): of a structured reply
``{"answer": ...}`` (GPT-4o's) it reads the ``answer`` field, of any other output it drops trailing
commas (their local-model path); then it takes the text after the last ``X. `` (a capital letter,
a period, one whitespace character: matches do not overlap and run to the end of the line) cut at
its first period (with ``None`` in the output: the output without ``None. ``; without a match: the
whole text), and the chosen option is the one whose text equals it exactly (their ``pred ==
gt_name``).
"""

from __future__ import annotations

import ast
import functools
import json
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

PARSER_VERSION = "2"
PARSERS = ("strict", "original")
# Each parser's own version (a run records its parser's): "original" 2 reads structured replies'
# answer field and follows process_raw_pred to the character; "strict" 2 reads answer statements,
# markdown, tags and JSON in code fences (issue 23).
PARSER_VERSIONS = {"strict": PARSER_VERSION, "original": "2"}

# what ParsedAnswer.rule says of a strict parse (see the module's docstring)
RULES = ("json", "tag", "statement", "letter", "letter+text", "text", "line", "unparsed")
_ORIGINAL = re.compile(r"[A-Z]\.\s(.+)")
_ORIGINAL_CUT = re.compile(r"\.\s*.*$")


@dataclass(frozen=True)
class ParsedAnswer:
    """The chosen option (0-based) or ``None`` when unparsed, and which rule decided."""

    index: int | None
    # "json", "tag", "statement", "letter", "letter+text", "text", "line", "original", "unparsed"
    rule: str


UNPARSED = ParsedAnswer(None, "unparsed")

# -- normalising ----------------------------------------------------------------------------

_TYPOGRAPHY = str.maketrans(
    {"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "「": '"', "」": '"', "『": '"', "』": '"',
     "【": "[", "】": "]", "〔": "(", "〕": ")", "。": ". ", "、": ", ", "\u00a0": " "}
)  # fmt: skip
_INVISIBLE = re.compile("[\u200b-\u200f\u2060\ufeff]")
_GLM_BOX = re.compile(r"<\|begin_of_box\|>(.*?)<\|end_of_box\|>", re.S)
_END_TOKENS = re.compile(
    r"<\|[A-Za-z_]+\|>|</?s>|<eos>|<end_of_turn>|<start_of_turn>|\[/?INST\]|</?(?:b|strong|em|i|"
    r"code|u)>",
)
_THINK = re.compile(r"(?:<think>|◁think▷).*?(?:</think>|◁/think▷|$)", re.S | re.I)
_ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.S | re.I)
_BOXED = re.compile(r"\\boxed\s*\{\s*(?:\\text\{)?([^{}]*)\}?\s*\}")
_FENCE = re.compile(r"```[ \t]*([A-Za-z]*)[ \t]*\n?(.*?)```", re.S)
_FLAT_OBJECT = re.compile(r"\{[^{}]*\}")
_EMPHASIS = re.compile(  # spans of at most a few hundred characters: linear on any reply
    r"(\*\*|__)(?=\S)(.{1,300}?)(?<=\S)\1|(?<![\w*])\*(?=\S)(.{1,300}?)(?<=\S)\*(?![\w*])"
)
# how far a clause or sentence is looked at around an answer (a repeating reply stays linear)
_WINDOW = 300
_BULLET = re.compile(r"^[ \t]*(?:[-*+•>]|#{1,6}|\d{1,2}[.)])[ \t]+", re.M)
_HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]*", re.M)
_LATEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$|\\text\{([^{}]*)\}")


def _normalise_unicode(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_TYPOGRAPHY)
    return _INVISIBLE.sub("", text)


def _plain(text: str) -> str:
    """The reply without markdown and LaTeX markup (one line per line)."""
    text = _FENCE.sub(lambda m: m.group(2), text)
    for _ in range(2):  # nested emphasis: ***B***
        text = _EMPHASIS.sub(lambda m: m.group(2) or m.group(3), text)
    text = text.replace("`", "").replace("**", "")
    text = _HEADING.sub("", text)
    text = _BULLET.sub("", text)
    text = _LATEX.sub(lambda m: m.group(1) or "", text)
    return "\n".join(" ".join(line.split()) for line in text.splitlines()).strip()


# -- options and letters --------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _option_pattern(text: str) -> re.Pattern:
    words = text.split()
    return re.compile(r"\s+".join(re.escape(w) for w in words) + r"(?![\w'])", re.I)


def _option_at(s: str, pos: int, options: Sequence[str]) -> tuple[int, int] | None:
    """``(option, end)`` of the option whose text starts at ``s[pos]`` (the longest)."""
    best = None
    for index, option in enumerate(options):
        if not option.strip():
            continue
        match = _option_pattern(option).match(s, pos)
        if match and (best is None or match.end() > best[1]):
            best = (index, match.end())
    return best


def _options_in(s: str, options: Sequence[str]) -> set[int]:
    """The options whose text occurs in ``s`` (as words)."""
    found = set()
    for index, option in enumerate(options):
        if option.strip() and re.search(r"(?<![\w'])" + _option_pattern(option).pattern, s, re.I):
            found.add(index)
    return found


_OPEN = re.compile(r"[\s\"'(\[]*")
_AFTER_LETTER = re.compile(r"[ \t]*(?:[.):,;]|[-–—](?=\s))?[ \t]*[\"'(\[]*[ \t]*")
_CLOSE = re.compile(r"[\"')\]]*\.?")
_BRACKETED = re.compile(r"[(\[{]\s*([A-Za-z])\s*[)\]}]")
_BARE = re.compile(r"([A-Za-z])(?![\w’])(?!'\w)(?![-/]\w)(?!\.[a-z]\.)")  # not "e.g."
_LETTER_PREFIX = re.compile(
    r"[(\[]?\s*(?:the\s+)?(?:option|choice|letter)(?![a-z])\s*(?:is\s+)?[:#]?\s*", re.I
)
_CONJUNCTION = re.compile(
    r"\s+(?:because|since|as|given|which|based|from|due|considering|but|so|in|with|for|where|"
    r"when|while|here|there|then|rather|over|instead|not|-|–|—)(?![\w'])",
    re.I,
)
# what may follow a subject letter: "A is the correct answer", "B fits best"
_PREDICATE = re.compile(r"\s+(?:is|seems|appears|looks|fits|best|would)\b", re.I)
_WORD_AFTER = re.compile(r"[ \t]+[A-Za-z]")
_NEWLINE_AFTER = re.compile(r"[ \t]*(?:\n|$)")


@dataclass(frozen=True)
class _Read:
    """An answer expression read at some position: its option (``None``: it names none, e.g. a
    letter whose text is another option's, or a letter outside the options), its form and end."""

    index: int | None
    form: str  # "letter", "letter+text", "text"
    end: int


def _letter_at(
    s: str, pos: int, options: Sequence[str], *, lower: bool, loose: bool
) -> tuple[str, int, bool] | None:
    """``(letter, end, bracketed)`` when an option letter (in any case) starts at ``s[pos]``.

    ``lower``: accept a lower-case letter (where it cannot be a word). ``loose``: any word may
    follow an upper-case letter other than ``A`` / ``I``; otherwise only punctuation, the end, a
    conjunction, a line break or an option's text may follow a letter written without brackets."""
    prefixed = _LETTER_PREFIX.match(s, pos)
    start = prefixed.end() if prefixed else pos
    match = _BRACKETED.match(s, start)
    if match:
        letter = match.group(1)
        if letter.islower() and not (lower or prefixed):
            return None
        return letter.upper(), match.end(), True
    match = _BARE.match(s, start)
    if not match:
        return None
    letter, end = match.group(1), match.end()
    rest = s[end:]
    punctuated = bool(re.match(r"[.):,;!?\"']|\s*[-–—]\s|\s*$", rest))
    if letter.islower():
        if not (lower or prefixed):
            return None
        if letter in "ai" and not re.match(r"[.):]|\s*$", rest):
            return None  # "a" and "i" are words unless marked as a letter
        if not (re.match(r"[.):,;!?\"']|\s*$", rest) or _CONJUNCTION.match(s, end)):
            return None
        return letter.upper(), end, False
    if punctuated or _NEWLINE_AFTER.match(s, end) or re.match(r"\s+[^\w\s]", rest):
        return letter, end, False
    text_after = _option_at(s, _OPEN.match(s, end).end(), options)
    if text_after is not None or _CONJUNCTION.match(s, end) or _PREDICATE.match(s, end):
        return letter, end, False
    if letter in "AI" or not loose:
        return None  # "A person ...", "I think ...", "It's C that ..."
    return letter, end, False


def _index(letter: str, options: Sequence[str]) -> int | None:
    index = ord(letter) - ord("A")
    return index if 0 <= index < len(options) else None


def _expression(
    s: str, pos: int, options: Sequence[str], *, lower: bool = True, loose: bool = True
) -> _Read | None:
    """The answer expression starting at ``s[pos]`` (a letter form, with or without its option
    text, or an option text with or without its letter), or ``None``."""
    pos = _OPEN.match(s, pos).end() if s[pos : pos + 1] in "\"'" else pos
    found = _letter_at(s, pos, options, lower=lower, loose=loose)
    if found is not None:
        letter, end, _ = found
        index = _index(letter, options)
        after = _AFTER_LETTER.match(s, end)
        named = _option_at(s, after.end(), options)
        if named is None:
            tail = re.match(r"[ \t]*[.):](?!\w)", s[end:])
            return _Read(index, "letter", end + (tail.end() if tail else 0))
        if index is None or named[0] != index:
            return _Read(None, "letter+text", named[1])  # the text is another option's
        return _Read(index, "letter+text", _CLOSE.match(s, named[1]).end())
    start = _OPEN.match(s, pos).end()
    named = _option_at(s, start, options)
    if named is None:
        return None
    index, end = named
    end = _CLOSE.match(s, end).end()
    tag = re.compile(
        r"[ \t]*(?:[,:\-–—][ \t]*)?(?:[(\[][ \t]*(?:(?:option|choice|letter)[ \t]*)?([A-Za-z])[ \t]*"
        r"[)\]]|(?:option|choice|letter)[ \t]+([A-Za-z])(?![\w']))",
        re.I,
    ).match(s, end)
    if tag:
        letter = (tag.group(1) or tag.group(2)).upper()
        if _index(letter, options) != index:
            return _Read(None, "letter+text", tag.end())
        return _Read(index, "letter+text", _CLOSE.match(s, tag.end()).end())
    return _Read(index, "text", end)


_ALTERNATIVE = re.compile(
    r"[ \t]*(?:,[ \t]*)?(?:\bor\b|\band\b|/|&|\bvs\b\.?|\bversus\b|,)[ \t]*(?:(?:maybe|possibly|"
    r"perhaps|even|else|rather)[ \t]+)?(?:(?:option|choice)[ \t]+)?",
    re.I,
)
_HEDGE_WORDS = re.compile(
    r"\b(?:or|also|alternatively|either|could|might|may|maybe|possibly|perhaps|both)\b", re.I
)
_NEGATION = re.compile(
    r"n't\b|\b(?:not|no|never|neither|nor|none|cannot|unsure|uncertain|unclear|whether|doubt|"
    r"incorrect|wrong|unlikely)\b",
    re.I,
)
_QUESTION = re.compile(r"[ \t]*\?")
_SENTENCE_END = re.compile(r"[.!?;](?=\s|$)|\n")


def _other_mentions(s: str, read: _Read, options: Sequence[str]) -> bool:
    """Whether ``s`` (what follows an answer in its sentence) names another option: its letter
    (upper case, or after ``option``) or its text."""
    for match in re.finditer(r"(?:option|choice)\s|[(\[]|(?<![\w'])[A-Z](?![\w'])", s, re.I):
        found = _letter_at(s, match.start(), options, lower=False, loose=True)
        if found is not None:
            index = _index(found[0], options)
            if index is not None and index != read.index:
                return True
    return bool(_options_in(s, options) - {read.index})


def _alternatives(s: str, read: _Read, options: Sequence[str]) -> bool:
    """Whether another answer is offered beside ``read`` (``A or B``, ``B/C``, ``B, C``, ``B, but
    C is also possible``)."""
    alternative = _ALTERNATIVE.match(s, read.end)
    if alternative and alternative.end() > read.end:
        other = _expression(s, alternative.end(), options, lower=False, loose=False)
        if other is not None and other.index != read.index:
            return True
    end = _SENTENCE_END.search(s, read.end, read.end + _WINDOW)
    sentence = s[read.end : end.start() if end else read.end + _WINDOW]
    return bool(_HEDGE_WORDS.search(sentence)) and _other_mentions(sentence, read, options)


# -- answer statements ----------------------------------------------------------------------

_QUALIFIER = r"(?:(?:my|the|final|correct|right|best|most\s+likely|likely|true|selected|chosen)\s+)"
_ADVERB = r"(?:(?:probably|likely|most\s+likely|clearly|definitely|certainly|indeed|simply)\s+)?"
_COPULA = r"(?:is|would\s+be|should\s+be|will\s+be|must\s+be|here\s+is)"
_STRONG_CUES = re.compile(
    "|".join(
        [
            # "The answer is B", "Answer: B", "Final answer - D", "answer choice is B", "Ans: B"
            rf"\b{_QUALIFIER}*(?:answer|ans\b\.?|guess|prediction|response)[\])]?"
            rf"(?:\s+(?:choice|option|letter))?(?:\s+to\s+(?:this|the)\s+question)?"
            rf"(?:\s+{_COPULA}\b)?\s*[:=\-–—]?\s*{_ADVERB}",
            # "the correct option is C", "My choice: B", "selected option: B", "Correct: B"
            rf"\b{_QUALIFIER}+(?:option|choice|letter|selection)(?:\s+{_COPULA}\b)?\s*"
            rf"[:=\-–—]?\s*{_ADVERB}",
            rf"\b(?:option|choice|letter)\s+(?:is|would\s+be)\s+{_ADVERB}",
            r"\bcorrect\s*:\s*",
            # "I'd go with B", "I choose option C", "I'll pick B"
            r"\b(?:I|we)(?:\s+would|\s+will|'d|'ll|\s+am\s+going\s+to)?\s+(?:choose|pick|select|"
            r"go\s+with|opt\s+for|answer(?:\s+with)?)\s*[:\-–—]?\s*",
            # "答案：B", "答案是B", "选B", "答え：B", "정답: B", "La respuesta es B", "Antwort: B"
            r"答案\s*(?:是|为|為)?\s*[:=]?\s*",
            r"(?:我)?选(?:择|项)?\s*",
            r"答え\s*(?:は)?\s*[:=]?\s*",
            r"정답\s*(?:은|는)?\s*[:=]?\s*",
            r"\b(?:la\s+)?(?:respuesta|réponse|risposta|resposta)(?:\s+(?:correcta|correcte|corretta|"
            r"correta))?(?:\s+(?:es|est|è|é))?\s*[:=]?\s*",
            r"\b(?:die\s+)?(?:richtige\s+)?antwort(?:\s+ist)?\s*[:=]?\s*",
        ]
    ),
    re.I,
)
_WEAK_CUES = re.compile(  # the answer must end its clause
    "|".join(
        [
            # "It's B.", "that is option C", "which is B", "I'd say B", "I think it's I (...)"
            rf"\b(?:it|this|that|which)(?:'s|\s+is|\s+would\s+be|\s+must\s+be|\s+should\s+be)\s+"
            rf"{_ADVERB}",
            r"\b(?:I|we)(?:\s+would|'d)?\s+say\s*,?\s*",
            rf"\bI\s+(?:think|believe|guess|suppose)\s*,?\s*(?:(?:it'?s|it\s+is)\s+)?{_ADVERB}",
            # "The action being performed is **close door** (B)"
            r"(?:the\s+)?(?:(?:most\s+likely|correct|best|right)\s+)?action(?:\s+(?:being\s+"
            r"performed|performed|shown|depicted|in\s+the\s+(?:video|frames)|here|(?:I|you)\s+"
            rf"(?:am|are)\s+(?:doing|performing)))?\s+(?:is|would\s+be)\s+{_ADVERB}",
            # "which corresponds to option B", "This matches (B) best"
            r"\b(?:corresponds|corresponding|matches|matching|aligns|consistent)\s+(?:best\s+|most\s+"
            r"closely\s+)?(?:to|with)?\s*",
            # "Therefore, B.", "Probably B.", "not A but C"
            r"\b(?:therefore|thus|hence|so)\s*[,:]?\s*",
            r"\b(?:probably|most\s+likely|likely|definitely|certainly|surely)\s*[,:]?\s*",
            r"\bnot\s+(?:option\s+)?[(\[]?[A-Za-z][)\]]?\s*,?\s+but\s+(?:rather\s+)?",
        ]
    ),
    re.I,
)
_CORRECTION_CUES = re.compile(  # a corrected answer: the letter alone ends its clause
    r"\b(?:no\s*,?\s*wait|wait|actually|I\s+mean|correction|or\s+rather|make\s+that|scratch\s+"
    r"that)\b[\s,:;.!\-–—]*(?:(?:it'?s|it\s+is|the\s+answer\s+is)\s+)?",
    re.I,
)
_REVERSE_CUE = re.compile(
    r"[ \t]+(?:is|seems|appears|looks|would[ \t]+be)[ \t]+(?:to[ \t]+be[ \t]+)?(?:the[ \t]+|my"
    r"[ \t]+)?(?:(?:most|best|clearly|definitely|only|final)[ \t]+)?(?:correct|right|best|answer|"
    r"accurate|likely|appropriate|fitting|fit|match|choice|option|pick)\b|[ \t]+(?:fits[ \t]+best|"
    r"best[ \t]+(?:fits|matches|describes))\b",
    re.I,
)
_CLAUSE_START = re.compile(r"[.!?;:\n,(]|\bbut\b|\bhowever\b|\bcorrecting myself\b", re.I)
_OFFERED_AFTER = re.compile(  # "B. Or C.": another letter offered after the answer
    r"\bor\b[\s,]*(?:(?:maybe|perhaps|possibly|even|probably)\s+)?(?:(?:it'?s|it\s+is)\s+)?",
    re.I,
)
_DOUBT = re.compile(
    r"\b(?:not\s+(?:sure|certain)|unsure|uncertain|can'?t\s+(?:tell|decide|be\s+sure)|cannot\s+"
    r"(?:tell|decide|be\s+sure)|don'?t\s+know|no\s+idea|hard\s+to\s+(?:say|tell))\b",
    re.I,
)
_NEGATED_LETTER = re.compile(
    r"(?:n't|\bnot|\bneither|\bnor|\bexcept)\s+(?:(?:option|choice)\s+)?(?=[(\[]?[A-Za-z]\b)",
    re.I,
)
_TIGHT_END = re.compile(r"[ \t]*(?:[.;,!)]|\n|$)")


@dataclass(frozen=True)
class _Statement:
    position: int
    read: _Read
    offered_more: bool  # two letters offered as the answer


def _clause_start(plain: str, position: int) -> int:
    """Where the clause that reaches ``position`` starts (looking back at most :data:`_WINDOW`)."""
    start = max(0, position - _WINDOW)
    starts = [m.end() for m in _CLAUSE_START.finditer(plain, start, position)]
    return starts[-1] if starts else start


def _negated_clause(plain: str, cue_start: int) -> bool:
    """Whether the clause leading to an answer cue is negated (``I don't think the answer``)."""
    clause = plain[_clause_start(plain, cue_start) : cue_start]
    clause = re.sub(r"\bno\s+doubt\b", "", clause, flags=re.I)
    return bool(_NEGATION.search(clause))


def _statements(plain: str, options: Sequence[str]) -> list[_Statement]:
    """Every answer statement of a reply, in order."""
    found: dict[int, _Statement] = {}
    for cues, kind in ((_STRONG_CUES, "strong"), (_WEAK_CUES, "weak"), (_CORRECTION_CUES, "tight")):
        strong = kind == "strong"
        for cue in cues.finditer(plain):
            if cue.end() == cue.start() or _negated_clause(plain, cue.start()):
                continue
            read = _expression(plain, cue.end(), options, lower=strong, loose=strong)
            if read is None or _QUESTION.match(plain, read.end):
                continue
            if kind == "weak" and not _ends_clause(plain, read, options):
                continue
            if kind == "tight" and not _TIGHT_END.match(plain, read.end):
                continue
            found.setdefault(
                cue.end(), _Statement(cue.end(), read, _alternatives(plain, read, options))
            )
    for cue in _REVERSE_CUE.finditer(plain):
        clause_start = _clause_start(plain, cue.start())
        if _negated_clause(plain, cue.start()):
            continue
        for subject in reversed(list(re.finditer(r"(?:option|choice)\s|[(\[]|\b[A-Z]\b", plain[
            clause_start : cue.start()
        ], re.I))):  # fmt: skip
            at = clause_start + subject.start()
            read = _expression(plain, at, options, lower=False, loose=False)
            if read is not None and plain[read.end : cue.start()].strip(" \t.)]\"'") == "":
                found.setdefault(at, _Statement(at, _Read(read.index, read.form, cue.end()), False))
                break
    return [found[k] for k in sorted(found)]


def _ends_clause(plain: str, read: _Read, options: Sequence[str]) -> bool:
    """Whether a weak cue's answer ends its clause (``It's B.``, ``so B, because ...``), as an
    answer does, rather than starting a longer phrase (``it's C that ...``)."""
    rest = plain[read.end :]
    return bool(
        re.match(r"[ \t]*(?:[.!;,:)\]\-–—]|\n|$|(?:best|most\s+closely|exactly)\b)", rest)
        or _CONJUNCTION.match(plain, read.end)
    )


def _retracted(plain: str, statements: list[_Statement], options: Sequence[str]) -> bool:
    """Whether the final statement is taken back: its letter negated after it (``... so it is
    not B``), another letter offered after it (``B. Or C.``), or doubt after answers that
    disagree (``A; no wait, B; actually I'm not sure``)."""
    final = statements[-1]
    for negation in _NEGATED_LETTER.finditer(plain, final.read.end):
        found = _letter_at(plain, negation.end(), (), lower=True, loose=False)
        if found is not None and ord(found[0]) - ord("A") == final.read.index:
            return True
    for offered in _OFFERED_AFTER.finditer(plain, final.read.end):
        other = _expression(plain, offered.end(), options, lower=False, loose=False)
        if (
            other is not None
            and other.index != final.read.index
            and (_TIGHT_END.match(plain, other.end) or _QUESTION.match(plain, other.end))
        ):
            return True
    letters = {statement.read.index for statement in statements}
    return len(letters) > 1 and bool(_DOUBT.search(plain, final.read.end))


# -- answer lines ---------------------------------------------------------------------------


def _line_answer(line: str, options: Sequence[str], *, commentary: bool) -> _Read | None:
    """The answer a line gives when it starts with one: alone (``B. close door``), or, with
    ``commentary``, followed by words that name no other option and negate nothing."""
    read = _expression(line, 0, options, lower=True, loose=False)
    if read is None:
        return None
    if _QUESTION.match(line, read.end):
        return None  # "B?" asks rather than answers
    rest = line[read.end :].strip(" \t.!:;,-–—")
    if read.index is None or _alternatives(line, read, options):
        return _Read(None, read.form, read.end)
    if not rest:
        return read
    if not commentary or _negates_own(rest, read, options) or _HEDGE_WORDS.search(rest):
        return None
    if _other_mentions(_without_contrasts(rest, options), read, options):
        return None
    return read


_CONTRAST = re.compile(
    r"\b(?:than|not|n't|over|instead\s+of|unlike|except|rather\s+than)[\s,:]*(?:(?:option|"
    r"choice)\s+)?",
    re.I,
)


def _without_contrasts(rest: str, options: Sequence[str]) -> str:
    """Commentary without the options it sets aside (``rather than C``, ``not A``)."""
    cuts = []
    for contrast in _CONTRAST.finditer(rest):
        other = _expression(rest, contrast.end(), options, lower=False, loose=True)
        if other is not None:
            cuts.append((contrast.start(), other.end))
    for start, end in reversed(cuts):
        rest = rest[:start] + " " + rest[end:]
    return rest


def _negates_own(rest: str, read: _Read, options: Sequence[str]) -> bool:
    """Whether commentary after an answer negates something other than another option (``B (not
    A)`` negates A; ``A. open door - incorrect`` negates the answer itself)."""
    for negation in _NEGATION.finditer(rest):
        after = re.match(r"[\s:,]*(?:(?:option|choice)\s+)?", rest[negation.end() :]).end()
        at = negation.end() + after
        other = _expression(rest, at, options, lower=False, loose=True) if at < len(rest) else None
        if other is None or other.index == read.index:
            return True
    return False


_SENTENCE_BREAK = re.compile(r"(?<=[A-Za-z]{2}[.!?])\s+")


def _answer_lines(plain: str, options: Sequence[str]) -> list[tuple[int, _Read]]:
    """``(position, answer)`` of each answer line: a line that is only an answer, the first or
    last line starting with one, or a letter alone ending the reply (``... the door. B``)."""
    lines = []
    position = 0
    texts = plain.split("\n")
    filled = [i for i, text in enumerate(texts) if text.strip()]
    for number, text in enumerate(texts):
        edge = bool(filled) and number in (filled[0], filled[-1])
        read = _line_answer(text, options, commentary=edge)
        if read is not None:
            lines.append((position, read))
        elif filled and number == filled[-1]:
            breaks = list(_SENTENCE_BREAK.finditer(text))
            last = (
                _line_answer(text[breaks[-1].end() :], options, commentary=False)
                if breaks
                else None
            )
            if last is not None and last.form != "text":
                lines.append((position + breaks[-1].end(), last))
        position += len(text) + 1
    return lines


# -- the parser -----------------------------------------------------------------------------

_ANSWER_KEYS = (
    "answer", "final_answer", "finalanswer", "correct_answer", "answer_letter", "answer_option",
    "choice", "option", "selected_option", "selected_answer", "correct_option", "correct_choice",
    "option_letter", "choice_letter", "selection", "selected", "letter", "prediction", "action",
)  # fmt: skip


def _json_documents(text: str, openers: str = "{") -> Iterator[object]:
    """What the JSON parts of a reply decode to, in order: the whole reply (when it opens with
    one of ``openers``), each code fence, the last flat object; a part that is no JSON is read
    as a Python literal (``{'answer': 'B'}``: literals only, nothing is run), else passed over."""
    candidates = [text] if text.startswith(tuple(openers)) else []
    candidates += [m.group(2).strip() for m in _FENCE.finditer(text)]
    candidates += [m.group(0) for m in _FLAT_OBJECT.finditer(text)][-1:]
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            try:
                data = ast.literal_eval(candidate)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
        yield data


def _json_keys(data: dict) -> dict[str, object]:
    """A JSON object's fields by key, lower case with ``_`` for spaces (``Final Answer``)."""
    return {str(k).lower().replace(" ", "_"): v for k, v in data.items()}


def _json_answer(text: str) -> tuple[bool, object]:
    """``(True, value)`` of the answer field of a JSON object reply: the whole reply, a code
    fence, or the last flat object in it; ``(False, None)`` when there is none."""
    for data in _json_documents(text):
        if not isinstance(data, dict):
            continue
        keys = _json_keys(data)
        for key in _ANSWER_KEYS:
            if key in keys:
                value = keys[key]
                if isinstance(value, dict):  # {"answer": {"letter": "B", "text": "close door"}}
                    parts = [value.get(k) for k in ("letter", "option", "choice", "text")]
                    value = ". ".join(p for p in parts if isinstance(p, str)) or None
                return True, value
    return False, None


def parse_answer(output: str, options: Sequence[str]) -> ParsedAnswer:
    """Parse a raw model output against the question's option texts (in letter order); see the
    module's docstring for what is read and what is never guessed."""
    return _parse(output, options, depth=0)


def _prepared(output: str) -> str:
    """A reply ready to read: Unicode normalised, stripped, GLM's box written as ``\\boxed{}``,
    end-of-turn tokens blanked."""
    text = _normalise_unicode(output or "").strip()
    return _END_TOKENS.sub(" ", _GLM_BOX.sub(lambda m: f"\\boxed{{{m.group(1)}}}", text))


def _tag_texts(text: str) -> list[str]:
    """What the answer is tagged with: the last ``<answer>...</answer>``, else every
    ``\\boxed{...}`` outside the thinking (each to be read, and to agree); ``[]`` when none."""
    return _ANSWER_TAG.findall(text)[-1:] or _BOXED.findall(_THINK.sub(" ", text))


def _parse(output: str, options: Sequence[str], depth: int) -> ParsedAnswer:
    text = _prepared(output)
    if depth < 2:
        found, value = _json_answer(text)
        if found:
            if not isinstance(value, str):
                return UNPARSED  # a number is no letter (0- or 1-based?), nor is null
            inner = _parse(value, options, depth + 1)
            return ParsedAnswer(inner.index, "json") if inner.index is not None else UNPARSED
        tagged = _tag_texts(text)
        if tagged:
            reads = [_parse(tag, options, depth + 1) for tag in tagged]
            indices = {r.index for r in reads}
            if len(indices) == 1 and None not in indices:
                return ParsedAnswer(reads[0].index, "tag")
            return UNPARSED
    plain = _plain(_THINK.sub(" ", text))
    if not plain:
        return UNPARSED
    statements = _statements(plain, options)
    lines = _answer_lines(plain, options)
    if statements:
        final = statements[-1]
        if final.read.index is None or final.offered_more or _retracted(plain, statements, options):
            return UNPARSED
        last_line = plain.rfind("\n") + 1
        if any(p == last_line > final.position and r.index != final.read.index for p, r in lines):
            return UNPARSED  # the reply's last line, after the final statement, says otherwise
        return ParsedAnswer(final.read.index, "statement")
    indices = {read.index for _, read in lines}
    if len(indices) != 1 or None in indices:
        return UNPARSED
    if "\n" not in plain and lines[0][0] == 0:  # a one-line reply that is the answer
        form = lines[0][1].form
        return ParsedAnswer(lines[0][1].index, form)
    return ParsedAnswer(lines[0][1].index, "line")


def structured_answer(output: str) -> str | None:
    """The ``answer`` field of a JSON object reply (structured output), else ``None``."""
    text = output.strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    answer = data.get("answer") if isinstance(data, dict) else None
    return answer if isinstance(answer, str) else None


def original_prediction(text: str) -> str:
    """The release's ``process_raw_pred``: the predicted option text of an answer."""
    matches = _ORIGINAL.findall(text)
    if "None" in text:
        return text.replace("None. ", "")
    if matches:
        return _ORIGINAL_CUT.sub("", matches[-1])
    return text


def parse_answer_original(output: str, options: Sequence[str]) -> ParsedAnswer:
    """The original release's scoring (see the module's docstring): the option whose text equals
    the predicted text of the reply's ``answer`` field (structured) or of the output."""
    answer = structured_answer(output)
    text = answer if answer is not None else output.rstrip(",")
    prediction = original_prediction(text)
    index = next((i for i, option in enumerate(options) if option == prediction), None)
    return ParsedAnswer(index, "original" if index is not None else "unparsed")


def get_parser(name: str):
    """The parser named ``strict`` (default) or ``original``."""
    if name == "strict":
        return parse_answer
    if name == "original":
        return parse_answer_original
    raise ValueError(f"unknown parser {name!r}; choose one of {', '.join(PARSERS)}")
