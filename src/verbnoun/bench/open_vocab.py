"""Open-vocabulary mapping: a free-text answer -> (verb class, noun class) of a data set.

A model asked the direct-narration question (SPEC 5(d)) answers in words: "I grab the frying
pan", "put down the plate", "Opening the fridge door". Recognition metrics need classes, so this
module maps the answer to the data set's verb and noun classes using only the class lists
(:class:`~verbnoun.data.ek100.ClassVocabulary`: key and instance synonyms):

* the **lexicon** holds every key and instance as a word sequence: verbs ``put-down`` -> "put
  down"; nouns ``a:b:c`` (head first, then modifiers) -> "b c a" and "a of b c" (``pan:frying``
  -> "frying pan", ``ball:dough`` -> "ball of dough"); and the same with nouns singularised and
  verbs lemmatised by ``lemminflect`` (its data ship inside the wheel; nothing downloads);
* the **verb** is the first word after any subject, auxiliary or aspect word ("I am", "continue",
  "still"), with a particle next to it ("pick up") or the first preposition after the object
  ("put the bowl in the cupboard" -> ``put-in``) when the lexicon lists that combination;
* the **noun** is the first object of the sentence: the head of the first noun phrase after the
  verb (a phrase ends at a preposition or conjunction unless a lexicon entry spans it), matched
  longest-first; failing that, the first lexicon noun further on;
* optionally, a text-embedding model in a **local** directory (transformers ``AutoModel``, mean
  pooling) maps what the lexicon misses to the nearest class synonym by cosine similarity.

Every :class:`Mapping` says how each part was made (``exact``, ``lemma``, ``first-object``,
``embedding`` or ``unmapped``) and how confident it is. Nothing is learnt from narrations: the
confidences are fixed per method (see :data:`CONFIDENCE`), and the benchmark
``benchmarks/bench_open_vocab.py`` prints each method's measured accuracy beside them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from verbnoun.data.ek100 import ClassVocabulary
from verbnoun.errors import VerbnounError

MAPPER_VERSION = "1"
METHODS = ("exact", "lemma", "first-object", "embedding", "unmapped")
# Confidence of a part found by each method (the embedding's is its cosine similarity). Fixed
# values, not fitted: the benchmark prints each method's measured accuracy for comparison.
CONFIDENCE = {"exact": 1.0, "lemma": 0.95, "first-object": 0.75, "unmapped": 0.0}
AMBIGUITY_FACTOR = 0.8  # a word sequence listed by several classes of one vocabulary
MAX_NOUN_WORDS = 6


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that can open an answer before its verb: subjects, auxiliaries, adverbs of time/manner.
_LEADING = _set(
    "i im we you he she they it person camera wearer user someone c am m is s are re was were "
    "be being been will ll would can could shall should must may might do does did now just "
    "then currently still again also first next finally and so okay ok here there carefully "
    "quickly slowly gently simply basically seem seems appear appears to"
)
# Aspect words followed by the real verb: "continue stirring", "start to cut", "keep kneading".
_ASPECT = _set(
    "continue continues continuing keep keeps keeping start starts starting begin begins "
    "beginning try tries trying finish finishes finishing go goes going proceed proceeds "
    "attempt attempts want wants need needs about"
)
DETERMINERS = _set(
    "the a an some my your his her their its our this that these those another any each every "
    "few several both all more little bit"
)
PREPOSITIONS = _set(
    "in into inside on onto upon from with to at under over out off up down away back around "
    "through by for of across along against between behind beside near towards toward within "
    "without using onto unto underneath above below"
)
CONJUNCTIONS = _set("and or then while but before after as so")
_SEPARABLE = PREPOSITIONS  # the first of these after the object may complete the verb
_WORD = re.compile(r"[a-z0-9]+")
_SPLIT = re.compile(r"[-_\s]+")
_SENTENCE_END = re.compile(r"[.!?;\n]")


class OpenVocabError(VerbnounError):
    """A class list or embedding model that the mapper cannot use."""


# ---------------------------------------------------------------- words and their forms


@lru_cache(maxsize=65536)
def singular(word: str) -> str:
    """The noun lemma of a word (``knives`` -> ``knife``), the word itself when it has none."""
    import lemminflect

    lemmas = lemminflect.getAllLemmas(word, upos="NOUN").get("NOUN")
    if not lemmas:
        lemmas = lemminflect.getAllLemmasOOV(word, upos="NOUN").get("NOUN")
    return lemmas[0] if lemmas else word


@lru_cache(maxsize=65536)
def verb_lemmas(word: str) -> tuple[str, ...]:
    """Verb lemmas of a word (``grabbing`` -> ``grab``; ``leaves`` -> ``leave``)."""
    import lemminflect

    lemmas = lemminflect.getAllLemmas(word, upos="VERB").get("VERB")
    if not lemmas:
        lemmas = lemminflect.getAllLemmasOOV(word, upos="VERB").get("VERB", ())
    return tuple(lemma for lemma in lemmas if lemma != word)


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits); hyphens and apostrophes split words."""
    return _WORD.findall(text.lower())


def answer_text(raw: str) -> str:
    """The answer inside a model's output: the ``answer`` of a JSON object when it is one
    (structured output), after an ``Answer:`` label, up to the end of the first sentence."""
    text = raw.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("answer"), str):
            text = data["answer"].strip()
    text = re.sub(r"^\s*(?:answer|action|narration)\s*:\s*", "", text, flags=re.IGNORECASE)
    for sentence in _SENTENCE_END.split(text):
        if words(sentence):
            return sentence.strip()
    return ""


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
        return word in self.verb_heads or any(b in self.verb_heads for b in verb_lemmas(word))

    def noun_span(self, span: tuple[str, ...]) -> tuple[Entry, str] | None:
        if span in self.noun_exact:
            return self.noun_exact[span], "exact"
        lemma = tuple(singular(w) for w in span)
        if lemma in self.noun_lemma:
            return self.noun_lemma[lemma], "lemma"
        return None


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


# ---------------------------------------------------------------- mappings


@dataclass(frozen=True)
class Part:
    """How one half of an answer (its verb or its noun) was mapped.

    ``words``: the answer's words that gave the class; ``form``: the lexicon key or instance
    they matched (the nearest synonym for ``embedding``).
    """

    class_id: int | None
    method: str
    confidence: float
    words: str | None = None
    form: str | None = None

    def to_dict(self) -> dict:
        return {
            "class": self.class_id, "method": self.method,
            "confidence": round(self.confidence, 4), "words": self.words, "form": self.form,
        }  # fmt: skip


UNMAPPED = Part(None, "unmapped", 0.0)


@dataclass(frozen=True)
class Mapping:
    """A free-text answer mapped to classes; ``method`` is the weaker part's method and
    ``confidence`` the product of the parts' confidences."""

    text: str
    verb: Part
    noun: Part

    @property
    def verb_class(self) -> int | None:
        return self.verb.class_id

    @property
    def noun_class(self) -> int | None:
        return self.noun.class_id

    @property
    def mapped(self) -> bool:
        """Both verb and noun found."""
        return self.verb.class_id is not None and self.noun.class_id is not None

    @property
    def action_id(self) -> str | None:
        return f"{self.verb_class}:{self.noun_class}" if self.mapped else None

    @property
    def method(self) -> str:
        return max(self.verb.method, self.noun.method, key=METHODS.index)

    @property
    def confidence(self) -> float:
        return self.verb.confidence * self.noun.confidence

    def to_dict(self) -> dict:
        return {
            "text": self.text, "verb_class": self.verb_class, "noun_class": self.noun_class,
            "action_id": self.action_id, "method": self.method,
            "confidence": round(self.confidence, 4),
            "verb": self.verb.to_dict(), "noun": self.noun.to_dict(),
        }  # fmt: skip


@dataclass(frozen=True)
class _Parse:
    tokens: list[str]
    verb: Part
    object_start: int  # where the object region starts (after the verb and its particle)
    verb_query: str | None  # what the embedding should look up when the verb is unmapped


class OpenVocabMapper:
    """Maps free-text answers to (verb class, noun class) of the given class lists.

    ``embedding_model``: a local directory holding a transformers model and tokenizer; used only
    for a part the lexicon misses, accepted when the cosine similarity to the nearest class
    synonym reaches ``min_similarity``.
    """

    def __init__(
        self,
        verbs: ClassVocabulary,
        nouns: ClassVocabulary,
        *,
        embedding_model: str | Path | None = None,
        min_similarity: float = 0.5,
        device: str | None = None,
    ) -> None:
        self.lexicon = Lexicon(verbs, nouns)
        self.min_similarity = min_similarity
        self.embedder = (
            TextEmbedder(embedding_model, device=device) if embedding_model is not None else None
        )
        self._tables: dict[str, tuple[list[str], list[int], object]] = {}

    def settings(self) -> dict:
        """Everything about the mapper that can change a mapping (saved in config.json)."""
        return {
            "mapper_version": MAPPER_VERSION,
            "verb_classes": self.lexicon.verbs.source,
            "noun_classes": self.lexicon.nouns.source,
            "classes_sha256": self.lexicon.fingerprint(),
            "embedding_model": self.embedder.settings() if self.embedder else None,
            "min_similarity": self.min_similarity if self.embedder else None,
        }

    def map(self, text: str) -> Mapping:
        """Map one answer (raw model output or plain text)."""
        return self.map_many([text])[0]

    def map_many(self, texts: Sequence[str]) -> list[Mapping]:
        """Map answers; the embedding model (if any) sees all misses in one batch per part."""
        cleaned = [answer_text(t) for t in texts]
        parses = [self._verb(words(t)) for t in cleaned]
        nouns = [self._noun(p.tokens, p.object_start) for p in parses]
        verbs = [p.verb for p in parses]
        if self.embedder is not None:
            verbs = self._embed_missing("verb", verbs, [p.verb_query for p in parses])
            nouns = self._embed_missing(
                "noun", nouns, [_noun_query(p.tokens, p.object_start) for p in parses]
            )
        return [Mapping(t, v, n) for t, v, n in zip(cleaned, verbs, nouns, strict=True)]

    # -- the verb: first word after subject / auxiliaries / aspect words, with its particle
    def _verb(self, tokens: list[str]) -> _Parse:
        lexicon = self.lexicon
        i = 0
        while i < len(tokens):
            word = tokens[i]
            if word in _LEADING:
                i += 1
                continue
            if word in _ASPECT:
                j = i + 1 + (i + 1 < len(tokens) and tokens[i + 1] in ("to", "on", "with"))
                if j < len(tokens) and lexicon.is_verb_word(tokens[j]):
                    i = j
                    continue
            break
        position = i
        found = lexicon.verb_at(tokens, position) if position < len(tokens) else None
        if found is None:
            query = tokens[position] if position < len(tokens) else None
            return _Parse(tokens, UNMAPPED, position, query)
        entry, used, method = found
        confidence = CONFIDENCE[method]
        end = position + used
        if used == 1:  # a separable particle or the first preposition after the object
            later = next((k for k in range(end, len(tokens)) if tokens[k] in _SEPARABLE), None)
            if later is not None:
                pair = lexicon.verb_at([tokens[position], tokens[later]], 0)
                if pair is not None and pair[1] == 2:
                    entry = pair[0]
                    method = max(method, pair[2], key=METHODS.index)
                    if later == end:
                        end += 1
        if entry.classes > 1:
            confidence *= AMBIGUITY_FACTOR
        words_used = " ".join(tokens[position:end])
        part = Part(entry.class_id, method, confidence, words_used, entry.form)
        return _Parse(tokens, part, end, None)

    # -- the noun: the head of the first object phrase, else the first noun further on
    def _noun(self, tokens: list[str], start: int) -> Part:
        phrases = _phrases(tokens, start, self.lexicon)
        for rank, (_, end, matches) in enumerate(phrases):
            if not matches:
                continue
            # prefer the span ending at the phrase's last word (its head), then the longest
            best = max(matches, key=lambda m: (m[1], m[1] - m[0], -m[0]))
            span_start, span_end, entry, method = best
            if rank > 0 or span_end != end:
                method = "first-object"
            confidence = CONFIDENCE[method]
            if entry.classes > 1:
                confidence *= AMBIGUITY_FACTOR
            text = " ".join(tokens[span_start:span_end])
            return Part(entry.class_id, method, confidence, text, entry.form)
        return UNMAPPED

    def _embed_missing(self, kind: str, parts: list[Part], queries: list[str | None]) -> list[Part]:
        missing = [i for i, p in enumerate(parts) if p.class_id is None and queries[i]]
        if not missing:
            return parts
        import torch

        forms, classes, table = self._table(kind)
        query = self.embedder.encode([queries[i] for i in missing])  # type: ignore[union-attr]
        similarity = query @ table.T  # type: ignore[attr-defined]
        best = torch.argmax(similarity, dim=1)
        result = list(parts)
        for row, i in enumerate(missing):
            k = int(best[row])
            score = float(similarity[row, k])
            if score >= self.min_similarity:
                result[i] = Part(classes[k], "embedding", max(0.0, min(1.0, score)),
                                 queries[i], forms[k])  # fmt: skip
        return result

    def _table(self, kind: str):
        """Every class synonym of one kind as text, and its embedding (computed once)."""
        if kind not in self._tables:
            index = self.lexicon.verb_exact if kind == "verb" else self.lexicon.noun_exact
            forms = [" ".join(words) for words in index]
            classes = [entry.class_id for entry in index.values()]
            table = self.embedder.encode(forms)  # type: ignore[union-attr]
            self._tables[kind] = (forms, classes, table)
        return self._tables[kind]


def _phrases(tokens: list[str], start: int, lexicon: Lexicon):
    """Noun phrases from ``start`` on, in order: (begin, end, matches inside). A phrase ends at
    a preposition or conjunction unless a lexicon noun spans it ("piece of onion", "washing up
    liquid"); determiners before it are skipped."""
    n = len(tokens)
    matches_from: dict[int, list] = {}
    for j in range(start, n):
        for k in range(min(n, j + lexicon.max_noun_words), j, -1):
            found = lexicon.noun_span(tuple(tokens[j:k]))
            if found is not None:
                matches_from.setdefault(j, []).append((j, k, *found))
    boundary = PREPOSITIONS | CONJUNCTIONS
    phrases = []
    i = start
    while i < n:
        while i < n and (tokens[i] in DETERMINERS or tokens[i] in boundary):
            i += 1
        if i >= n:
            break
        end = i
        while end < n and tokens[end] not in boundary:
            end += 1
        grown = True
        while grown:  # extend over a boundary that a lexicon noun starting inside spans
            grown = False
            for j in range(i, end):
                for _, k, _, _ in matches_from.get(j, []):
                    if k > end:
                        end, grown = k, True
            if grown:
                while end < n and tokens[end] not in boundary:
                    end += 1
        inside = [m for j in range(i, end) for m in matches_from.get(j, []) if m[1] <= end]
        phrases.append((i, end, inside))
        i = end
    return phrases


def _noun_query(tokens: list[str], start: int) -> str | None:
    """The first object phrase's words (for the embedding when the lexicon has no noun)."""
    i = start
    while i < len(tokens) and (tokens[i] in DETERMINERS or tokens[i] in PREPOSITIONS):
        i += 1
    end = i
    while end < len(tokens) and tokens[end] not in PREPOSITIONS | CONJUNCTIONS:
        end += 1
    return " ".join(tokens[i:end]) or None


# ---------------------------------------------------------------- the naive baseline


class NaiveMapper:
    """The baseline of the benchmark: the first word looked up among the verb synonyms, and the
    phrase after it (from the first word that is not a particle or determiner up to the next
    preposition or conjunction) looked up, as written, among the noun synonyms. No lemmas, no
    verb particles, no subject or auxiliary words, no partial phrases."""

    def __init__(self, verbs: ClassVocabulary, nouns: ClassVocabulary) -> None:
        self.lexicon = Lexicon(verbs, nouns)

    def map(self, text: str) -> Mapping:
        tokens = words(answer_text(text))
        verb = UNMAPPED
        if tokens and (tokens[0],) in self.lexicon.verb_exact:
            entry = self.lexicon.verb_exact[(tokens[0],)]
            verb = Part(entry.class_id, "exact", 1.0, tokens[0], entry.form)
        begin = 1
        while begin < len(tokens) and tokens[begin] in PREPOSITIONS | DETERMINERS:
            begin += 1
        end = begin
        while end < len(tokens) and tokens[end] not in PREPOSITIONS | CONJUNCTIONS:
            end += 1
        phrase = tuple(tokens[begin:end])
        noun = UNMAPPED
        if phrase in self.lexicon.noun_exact:
            entry = self.lexicon.noun_exact[phrase]
            noun = Part(entry.class_id, "exact", 1.0, " ".join(phrase), entry.form)
        return Mapping(" ".join(tokens), verb, noun)


# ---------------------------------------------------------------- the embedding model


class TextEmbedder:
    """Sentence embeddings from a local transformers model: mean of the last hidden states over
    the attention mask, L2-normalised. Loads from the directory only (never downloads)."""

    def __init__(
        self, directory: str | Path, *, device: str | None = None, batch_size: int = 64
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.directory = Path(directory)
        if not (self.directory / "config.json").is_file():
            raise OpenVocabError(
                f"{self.directory}: not a local transformers model directory (no config.json)"
            )
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.directory, local_files_only=True)
            self.model = AutoModel.from_pretrained(self.directory, local_files_only=True)
        except (OSError, ValueError) as error:
            raise OpenVocabError(
                f"{self.directory}: cannot load the embedding model: {error}"
            ) from None
        self.device = device or "cpu"
        self.model.to(self.device).eval()
        self.batch_size = batch_size

    def settings(self) -> dict:
        from verbnoun.evaluate.local_adapter import checkpoint_fingerprint

        return {
            "path": str(self.directory.resolve()),
            "fingerprint": checkpoint_fingerprint(self.directory),
            "pooling": "mean",
        }

    def encode(self, texts: Sequence[str]):
        """``(len(texts), hidden)`` float32 tensor of unit vectors."""
        import torch

        chunks = []
        with torch.no_grad():
            for begin in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    list(texts[begin : begin + self.batch_size]),
                    padding=True, truncation=True, return_tensors="pt",
                ).to(self.device)  # fmt: skip
                hidden = self.model(**batch).last_hidden_state.float()
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                chunks.append(torch.nn.functional.normalize(pooled, dim=-1).cpu())
        return torch.cat(chunks)
