"""The lexicon of a data set's verb and noun classes: every key and instance as word sequences.

Built from the class lists alone (:class:`~verbnoun.data.ek100.ClassVocabulary`: keys and
instance synonyms), it answers the questions the free-text mapper
(:mod:`verbnoun.interpret.open_vocab`) and the clause finder (:mod:`verbnoun.interpret.clauses`)
ask of words: is this a verb here (as written or lemmatised), which noun does this span say,
is this unknown word a closed compound of two known ones, and which pair does the data set name
by its own convention (:data:`CONVENTIONS`). A word sequence several classes list goes to one
class, and :class:`Entry` keeps how many listed it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from verbnoun.data.ek100 import ClassVocabulary
from verbnoun.errors import VerbnounError
from verbnoun.interpret.free_text import noun_lemmas, singular, verb_lemmas

MAX_NOUN_WORDS = 6
_SPLIT = re.compile(r"[-_\s]+")
# A data set's own way of naming some actions, keyed by class keys (applied only when the class
# lists hold every key): EK100 narrates opening and closing a tap, and turning the water on or
# off, as turn-on / turn-off of the tap ("open tap" is labelled turn-on; its turn-off class
# lists tap-off, water-off).
CONVENTIONS = (
    (("open", "turn-on"), ("tap", "water"), ("turn-on", "tap")),
    (("close", "turn-off"), ("tap", "water"), ("turn-off", "tap")),
)


class OpenVocabError(VerbnounError):
    """A class list or embedding model that the mapper cannot use."""


# ---------------------------------------------------------------- words and their forms


def verb_form_words(form: str) -> tuple[str, ...]:
    """A verb key or instance as words: ``put-down`` -> ("put", "down")."""
    return tuple(w for w in _SPLIT.split(form.strip().lower()) if w)


def noun_form_phrases(form: str) -> list[tuple[str, ...]]:
    """A noun key or instance (``head:modifier:...``) as the phrases that say it:
    ``pan:frying`` -> "frying pan" and "pan of frying"; ``ball:dough`` -> "dough ball" and
    "ball of dough"."""
    parts = [
        tuple(w for w in _SPLIT.split(part.strip().lower()) if w)
        for part in form.replace("/", ":").split(":")
    ]
    parts = [p for p in parts if p]
    if not parts:
        return []
    head, modifiers = parts[0], [w for part in parts[1:] for w in part]
    phrases = [(*modifiers, *head)]
    if modifiers:
        phrases.append((*head, "of", *modifiers))
    return phrases


# ---------------------------------------------------------------- the lexicon


@dataclass(frozen=True)
class Entry:
    """A word sequence of the lexicon: the class it names (the most likely one when several
    classes list it), the form it came from, and how many classes list it."""

    class_id: int
    form: str
    classes: int


class Lexicon:
    """Word sequences of a data set's verb and noun classes, as written and lemmatised.

    Built from the class lists alone (keys and instances). A sequence listed by more than one
    class is given to the class whose key it is, else to the class listing it most often, else
    to the lowest id; ``Entry.classes`` keeps the count so the confidence can say so.
    """

    def __init__(self, verbs: ClassVocabulary, nouns: ClassVocabulary) -> None:
        if len(verbs) == 0 or len(nouns) == 0:
            raise OpenVocabError("open-vocabulary mapping needs non-empty verb and noun classes")
        self.verbs, self.nouns = verbs, nouns
        self.verb_exact = _index(_verb_forms(verbs))
        self.verb_heads = {w[0] for w in self.verb_exact}
        self.noun_exact = _index(_noun_forms(nouns))
        self.noun_lemma = _index(
            (c, key, form, tuple(singular(w) for w in words))
            for c, key, form, words in _noun_forms(nouns)
        )
        self.max_noun_words = min(MAX_NOUN_WORDS, max((len(w) for w in self.noun_exact), default=1))
        self.noun_words = {w for phrase in self.noun_exact for w in phrase}
        self.noun_words |= {w for phrase in self.noun_lemma for w in phrase}
        self.conventions = _conventions(verbs, nouns)

    def fingerprint(self) -> str:
        """sha256 of the class lists the lexicon was built from."""
        data = json.dumps(
            [list(self.verbs.keys), [list(i) for i in self.verbs.instances],
             list(self.nouns.keys), [list(i) for i in self.nouns.instances]]
        )  # fmt: skip
        return hashlib.sha256(data.encode("utf-8")).hexdigest()

    def verb_at(self, tokens: Sequence[str], i: int) -> tuple[Entry, int, str] | None:
        """The longest verb form starting at ``tokens[i]``: (entry, words used, method)."""
        for length in range(min(4, len(tokens) - i), 0, -1):
            span = tuple(tokens[i : i + length])
            if span in self.verb_exact:
                return self.verb_exact[span], length, "exact"
            for base in verb_lemmas(span[0]):
                lemma_span = (base, *span[1:])
                if lemma_span in self.verb_exact:  # verb forms are listed in base form
                    return self.verb_exact[lemma_span], length, "lemma"
        return None

    def is_verb_word(self, word: str) -> bool:
        """Whether a verb form of the lexicon starts with ``word`` or one of its lemmas."""
        return word in self.verb_heads or any(b in self.verb_heads for b in verb_lemmas(word))

    def is_noun_word(self, word: str) -> bool:
        """Whether ``word`` alone (or its singular) is a noun of the lexicon."""
        return (word,) in self.noun_exact or any((w,) in self.noun_lemma for w in noun_lemmas(word))

    def noun_span(self, span: tuple[str, ...]) -> tuple[Entry, str] | None:
        """The lexicon noun that ``span`` says, as written or with its head singular."""
        if span in self.noun_exact:
            return self.noun_exact[span], "exact"
        lemma = tuple(singular(w) for w in span)
        if lemma in self.noun_lemma:
            return self.noun_lemma[lemma], "lemma"
        for head in noun_lemmas(span[-1])[1:]:  # "leaves" -> leave, leaf
            if (*lemma[:-1], head) in self.noun_lemma:
                return self.noun_lemma[(*lemma[:-1], head)], "lemma"
        return None

    def split_compound(self, word: str) -> tuple[str, ...]:
        """An unknown closed compound as two lexicon words ("stockpot" -> stock pot), else
        ``(word,)``."""
        if len(word) < 6 or word in self.noun_words or singular(word) in self.noun_words:
            return (word,)
        if self.is_verb_word(word):
            return (word,)
        for cut in range(3, len(word) - 2):
            left, right = word[:cut], word[cut:]
            if left in self.noun_words and (
                right in self.noun_words or singular(right) in self.noun_words
            ):
                return (left, right)
        return (word,)

    def convention(self, verb: int, noun: int) -> tuple[int, int]:
        """(verb, noun) after the data set's naming conventions (:data:`CONVENTIONS`)."""
        return self.conventions.get((verb, noun), (verb, noun))


def _conventions(verbs: ClassVocabulary, nouns: ClassVocabulary) -> dict:
    verb_id = {key: i for i, key in enumerate(verbs.keys)}
    noun_id = {key: i for i, key in enumerate(nouns.keys)}
    table = {}
    for verb_keys, noun_keys, (verb, noun) in CONVENTIONS:
        keys = (*verb_keys, verb)
        if not all(k in verb_id for k in keys) or not all(k in noun_id for k in (*noun_keys, noun)):
            continue
        for v in verb_keys:
            for n in noun_keys:
                table[(verb_id[v], noun_id[n])] = (verb_id[verb], noun_id[noun])
    return table


def _verb_forms(verbs: ClassVocabulary):
    for c, (key, instances) in enumerate(zip(verbs.keys, verbs.instances, strict=True)):
        for form in (key, *instances):
            words = verb_form_words(form)
            if words:
                yield c, form == key, form, words


def _noun_forms(nouns: ClassVocabulary):
    for c, (key, instances) in enumerate(zip(nouns.keys, nouns.instances, strict=True)):
        for form in (key, *instances):
            for phrase in noun_form_phrases(form):
                yield c, form == key, form, phrase


def _index(forms: Iterable[tuple[int, bool, str, tuple[str, ...]]]) -> dict[tuple, Entry]:
    listed: dict[tuple, dict[int, list]] = {}
    for class_id, is_key, form, phrase in forms:
        entry = listed.setdefault(phrase, {}).setdefault(class_id, [0, 0, form])
        entry[0] += is_key
        entry[1] += 1
    index = {}
    for phrase, by_class in listed.items():
        best = min(by_class, key=lambda c: (-by_class[c][0], -by_class[c][1], c))
        index[phrase] = Entry(best, by_class[best][2], len(by_class))
    return index
