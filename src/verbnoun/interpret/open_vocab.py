"""Open-vocabulary mapping: a free-text answer -> (verb class, noun class) of a data set.

A model asked the direct-narration question (SPEC 5(d)) answers in words: "I grab the frying
pan", "put down the plate", "Opening the fridge door". Recognition metrics need classes, so this
module maps the answer to the data set's verb and noun classes using only the class lists
(:class:`~verbnoun.data.ek100.ClassVocabulary`: key and instance synonyms):

* the **lexicon** holds every key and instance as a word sequence: verbs ``put-down`` -> "put
  down"; nouns ``a:b:c`` (head first, then modifiers) -> "b c a" and "a of b c" (``pan:frying``
  -> "frying pan", ``ball:dough`` -> "ball of dough"); and the same with nouns singularised and
  verbs lemmatised by ``lemminflect`` (its data ship inside the wheel; nothing downloads);
* the **answer** is read the way models write it (:mod:`verbnoun.interpret.free_text`): JSON,
  markdown, quotes, labels ("The action is:"), asides and trailing sentences are set aside; the
  first sentence that names an action is mapped; refusals ("I cannot tell ...") stay unmapped;
* the **verb** is found where English puts one (:mod:`verbnoun.interpret.clauses`): after a subject
  ("The person", "I", "the camera wearer", "the hands"), auxiliaries and hedges ("is seen",
  "appears to be", "has just"), aspect verbs ("continues stirring"), or at the start of a clause;
  in a passive ("the pan is being washed") the subject is the object; of two actions the first
  performed one is mapped ("Before cutting the tomato, ... washes it" -> wash tomato) and
  :attr:`Mapping.actions` says how many there were; "use X to Y" maps Y. A particle next to the
  verb ("pick up") or the first preposition after the object ("put the bowl in the cupboard" ->
  ``put-in``) completes it when the lexicon lists that combination;
* the **noun** is the verb's first object: the head of the first noun phrase after the verb (a
  phrase ends at a preposition, conjunction or comma unless a lexicon entry spans it; "the door
  of the fridge" -> ``door:fridge``; "a sheet of foil" -> foil; instruments after "with" or
  "using" are later phrases), matched longest-first; failing that, the first lexicon noun
  further on in its clause. Everyday variants the class lists may lack ("faucet" -> tap,
  "zucchini" -> courgette) and closed compounds ("stockpot") are rewritten first;
* a data set's own naming **conventions** (:data:`CONVENTIONS`: EK100 "open the tap" is
  ``turn-on``/``tap``) are applied last;
* optionally, a text-embedding model in a **local** directory (transformers ``AutoModel``, mean
  pooling) maps what the lexicon misses to the nearest class synonym by cosine similarity.

Every :class:`Mapping` says how each part was made (``exact``, ``lemma``, ``first-object``,
``embedding`` or ``unmapped``) and how confident it is. Nothing is learnt from narrations: the
confidences are fixed per method (see :data:`CONFIDENCE`), and the benchmark
``benchmarks/bench_open_vocab.py`` prints each method's measured accuracy beside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from verbnoun.data.ek100 import ClassVocabulary
from verbnoun.interpret.clauses import (
    Action,
    ClauseFinder,
    counted,
    first_performed,
    object_end,
    performed,
)
from verbnoun.interpret.free_text import (
    ASPECT,
    AUXILIARIES,
    CLAUSE_MARKS,
    CONJUNCTIONS,
    DETERMINERS,
    HEDGES,
    PARTITIVES,
    PREPOSITIONS,
    SUBJECTS,
    answer_sentences,
    answer_text,
    drop_determiners_after_of,
    normalise,
    pronoun_object,
    singular,
    tokens,
    verb_lemmas,
    words,
)
from verbnoun.interpret.lexicon import (
    Entry,
    Lexicon,
    OpenVocabError,
    noun_form_phrases,
    verb_form_words,
)

__all__ = [
    "CONFIDENCE", "METHODS", "Entry", "Lexicon", "Mapping", "NaiveMapper", "OpenVocabError",
    "OpenVocabMapper", "Part", "TextEmbedder", "answer_sentences", "answer_text",
    "noun_form_phrases", "singular", "verb_form_words", "verb_lemmas", "words",
]  # fmt: skip

MAPPER_VERSION = "2"
METHODS = ("exact", "lemma", "first-object", "embedding", "unmapped")
# Confidence of a part found by each method (the embedding's is its cosine similarity). Fixed
# values, not fitted: the benchmark prints each method's measured accuracy for comparison.
CONFIDENCE = {"exact": 1.0, "lemma": 0.95, "first-object": 0.75, "unmapped": 0.0}
AMBIGUITY_FACTOR = 0.8  # a word sequence listed by several classes of one vocabulary
PARSE_CACHE = 100_000  # answers whose parse is remembered


_SEPARABLE = PREPOSITIONS  # the first of these after the object may complete the verb
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
    ``confidence`` the product of the parts' confidences.

    ``text``: the sentence that was mapped; ``actions``: how many actions the answer names (the
    mapping is of the one performed first; 0 for a refusal or an answer without a verb).
    """

    text: str
    verb: Part
    noun: Part
    actions: int = 1

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
            "confidence": round(self.confidence, 4), "actions": self.actions,
            "verb": self.verb.to_dict(), "noun": self.noun.to_dict(),
        }  # fmt: skip


@dataclass(frozen=True)
class _Parse:
    text: str
    tokens: list[str]
    verb: Part
    noun: Part
    actions: int
    verb_query: str | None  # what the embedding should look up when the verb is unmapped
    noun_query: str | None  # and when the noun is


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
        self.clauses = ClauseFinder(self.lexicon)
        self._cache: dict[str, _Parse] = {}
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
        parses = [self._parsed(t) for t in texts]
        verbs = [p.verb for p in parses]
        nouns = [p.noun for p in parses]
        if self.embedder is not None:
            verbs = self._embed_missing("verb", verbs, [p.verb_query for p in parses])
            nouns = self._embed_missing("noun", nouns, [p.noun_query for p in parses])
        return [
            Mapping(p.text, v, n, p.actions) for p, v, n in zip(parses, verbs, nouns, strict=True)
        ]

    def map_all(self, text: str) -> list[Mapping]:
        """Every action an answer names, mapped (a multi-label answer: "the person stirs the
        pot and opens the tap" -> stir pot, open tap): each action done (not a purpose, a
        condition or an instrument's "use") of each sentence that is no refusal, in order; only
        the fully mapped ones (verb and noun), each action id once. The embedding model, if
        any, fills what the lexicon misses as in :meth:`map_many`."""
        parses = []
        for sentence in answer_sentences(text):
            toks = self._tokens(sentence)
            actions = self.clauses.actions(toks)
            if not actions:  # a refusal (None) or no verb
                continue
            done = performed(toks, actions)
            parses += [self._sentence(sentence, toks, actions, len(done), k) for k in done]
        verbs, nouns = [p.verb for p in parses], [p.noun for p in parses]
        if self.embedder is not None and parses:
            verbs = self._embed_missing("verb", verbs, [p.verb_query for p in parses])
            nouns = self._embed_missing("noun", nouns, [p.noun_query for p in parses])
        found: dict[str, Mapping] = {}
        for p, v, n in zip(parses, verbs, nouns, strict=True):
            mapping = Mapping(p.text, v, n, p.actions)
            if mapping.action_id is not None:
                found.setdefault(mapping.action_id, mapping)
        return list(found.values())

    def _parsed(self, raw: str) -> _Parse:
        """:meth:`_parse`, remembered (answers and narrations repeat: "open tap" 68 times)."""
        parse = self._cache.get(raw)
        if parse is None:
            if len(self._cache) >= PARSE_CACHE:
                self._cache.clear()
            parse = self._cache[raw] = self._parse(raw)
        return parse

    # -- an answer: the first sentence that names an action, the action performed first
    def _parse(self, raw: str) -> _Parse:
        sentences = []
        for sentence in answer_sentences(raw):
            toks = self._tokens(sentence)
            sentences.append((sentence, toks, self.clauses.actions(toks)))
        answered = [s for s in sentences if s[2] is not None]
        with_verb = [k for k, s in enumerate(answered) if s[2]]
        if not with_verb:  # no verb anywhere: a noun alone is still worth reporting
            if not answered:
                text = sentences[0][0] if sentences else ""
                return _Parse(text, [], UNMAPPED, UNMAPPED, 0, None, None)
            text, toks, _ = answered[0]
            start = _after_subject(toks)
            noun = self._noun(toks[start:])
            query = toks[start] if start < len(toks) else None
            return _Parse(text, toks, UNMAPPED, noun, 0, query, _noun_query(toks[start + 1 :]))
        first = with_verb[0]
        total = max(1, sum(counted(s[1], s[2]) for s in answered[first:] if s[2]))
        parses = []
        for k in with_verb:  # the first sentence whose action has its object ("He walks over.
            parses.append(self._sentence(*answered[k], total))  # Then he grabs a pan.")
            if parses[-1].noun.class_id is not None:
                return parses[-1]
        return parses[0]

    def _sentence(
        self, text: str, toks: list[str], actions: list[Action], total: int, k: int | None = None
    ) -> _Parse:
        """The mapping of action ``k`` of a sentence (default: the one performed first)."""
        lexicon = self.lexicon
        k = first_performed(toks, actions) if k is None else k
        action = actions[k]
        end = object_end(toks, actions, k)
        verb, object_start = self._verb_part(toks, action, end)
        if action.passive_subject is not None:
            region = toks[action.passive_subject[0] : action.passive_subject[1]]
        else:
            region = toks[object_start:end]
            if not region and k + 1 < len(actions):  # "rinses and dries the bowl"
                region = toks[actions[k + 1].end : object_end(toks, actions, k + 1)]
        noun = self._noun(region)
        if k > 0 and pronoun_object(region):  # "before cutting the tomato, ... washes it"
            other = actions[k - 1]
            noun = self._noun(toks[other.end : object_end(toks, actions, k - 1)])
        elif noun.class_id is None and pronoun_object(region):  # "reaches for the pot, lifts it"
            noun = self._antecedent(toks[: action.start])
        if verb.class_id is not None and noun.class_id is not None:
            v, n = lexicon.convention(verb.class_id, noun.class_id)
            if v != verb.class_id:
                verb = Part(v, verb.method, verb.confidence, verb.words, lexicon.verbs.keys[v])
            if n != noun.class_id:
                noun = Part(n, noun.method, noun.confidence, noun.words, lexicon.nouns.keys[n])
        return _Parse(text, toks, verb, noun, total, None, _noun_query(region))

    def _tokens(self, sentence: str) -> list[str]:
        toks = normalise(tokens(sentence))
        return [part for t in toks for part in self.lexicon.split_compound(t)]

    # -- the verb: its form, completed by a particle after the object ("turn the tap off")
    def _verb_part(self, toks: list[str], action: Action, end: int) -> tuple[Part, int]:
        lexicon = self.lexicon
        entry, method, stop = action.entry, action.method, action.end
        if stop - action.start == 1:
            later = _particle(toks, stop, end)
            if later is not None:
                pair = lexicon.verb_at([toks[action.start], toks[later]], 0)
                if pair is not None and pair[1] == 2 and _completes(toks, later, stop, pair, entry):
                    entry = pair[0]
                    method = max(method, pair[2], key=METHODS.index)
                    if later == stop:
                        stop += 1
        confidence = CONFIDENCE[method] * (AMBIGUITY_FACTOR if entry.classes > 1 else 1.0)
        words_used = " ".join(toks[action.start : stop])
        return Part(entry.class_id, method, confidence, words_used, entry.form), stop

    def _antecedent(self, before: list[str]) -> Part:
        """The last noun before the verb, for a pronoun object ("it", "them")."""
        before = drop_determiners_after_of(before)
        phrases = [p for p in _phrases(before, 0, self.lexicon) if p[2]]
        if not phrases:
            return UNMAPPED
        matches = phrases[-1][2]
        span_start, span_end, entry, _ = max(matches, key=lambda m: (m[1], m[1] - m[0], -m[0]))
        confidence = CONFIDENCE["first-object"] * (AMBIGUITY_FACTOR if entry.classes > 1 else 1.0)
        words_used = " ".join(before[span_start:span_end])
        return Part(entry.class_id, "first-object", confidence, words_used, entry.form)

    # -- the noun: the head of the first object phrase, else the first noun further on
    def _noun(self, region: list[str]) -> Part:
        region = drop_determiners_after_of(region)
        phrases = _phrases(region, 0, self.lexicon)
        rank = 0
        for begin, end, matches in phrases:
            if end < len(region) and region[end] == "of" and region[end - 1] in PARTITIVES:
                continue  # "a sheet of foil": the noun is what the quantity is of
            if not matches:
                rank += 1
                continue
            # "N1 of N2": the longest noun saying N1 ("cap of the olive oil bottle" -> cap);
            # otherwise the span ending at the phrase's last word (its head), then the longest
            of = next((k for k in range(begin + 1, end) if region[k] == "of"), None)
            heads = [m for m in matches if of is not None and m[0] < of <= m[1]]
            if heads:
                best = max(heads, key=lambda m: (m[1] - m[0], -m[0]))
            else:
                best = max(matches, key=lambda m: (m[1], m[1] - m[0], -m[0]))
            span_start, span_end, entry, method = best
            if rank > 0 or (span_end != end and not heads):
                method = "first-object"
            confidence = CONFIDENCE[method]
            if entry.classes > 1:
                confidence *= AMBIGUITY_FACTOR
            text = " ".join(region[span_start:span_end])
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
    boundary = _BOUNDARY
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


_BOUNDARY = PREPOSITIONS | CONJUNCTIONS | {",", ":"}
_LEAD_IN = (
    SUBJECTS | AUXILIARIES | HEDGES | ASPECT | CLAUSE_MARKS | DETERMINERS | {"to", "s", "not"}
)  # fmt: skip


def _noun_query(region: list[str]) -> str | None:
    """The first object phrase's words (for the embedding when the lexicon has no noun)."""
    i = 0
    while i < len(region) and (region[i] in DETERMINERS or region[i] in _BOUNDARY):
        i += 1
    end = i
    while end < len(region) and region[end] not in _BOUNDARY:
        end += 1
    return " ".join(region[i:end]) or None


def _after_subject(toks: list[str]) -> int:
    """Where a sentence without a known verb has its (unknown) verb: after any subject ("the
    camera wearer"), auxiliary or hedge words."""
    subject = [k for k in range(min(len(toks), 6)) if toks[k] in SUBJECTS]
    i = subject[-1] + 1 if subject else 0
    while i < len(toks) and toks[i] in _LEAD_IN:
        i += 1
    return i


def _particle(toks: list[str], start: int, end: int) -> int | None:
    """The first preposition after the verb within its clause, passing over "back" before
    another one ("put the milk back in the fridge" -> put-in, as EK100 narrates it) and an "of"
    inside the object ("a bottle of milk out of the fridge" -> take-out)."""
    for k in range(start, end):
        if toks[k] in _SEPARABLE:
            if toks[k] == "back" and k + 1 < end and toks[k + 1] in _SEPARABLE:
                continue
            if toks[k] == "of" and k > start:
                continue
            return k
    return None


def _completes(toks: list[str], k: int, verb_end: int, pair: tuple, entry: Entry) -> bool:
    """Whether the preposition at ``k`` makes a verb pair with the verb: always next to the
    verb, after the object unless it is "on" opening a place that changes the verb's class
    ("water the plant on the windowsill" is not water-on)."""
    if k == verb_end or toks[k] != "on" or pair[0].class_id == entry.class_id:
        return True
    after = toks[k + 1] if k + 1 < len(toks) else None
    return after is None or after in _BOUNDARY


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
        from verbnoun.runs import checkpoint_fingerprint

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
