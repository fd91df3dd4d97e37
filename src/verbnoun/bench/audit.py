"""A blind audit of a multiple-choice benchmark: how much of it a reader that never sees the video
gets right.

In: the questions to audit (a question file's :class:`~verbnoun.bench.questions.Question` s) and,
optionally, training material for the rules that learn: question files or SFT MQA records
(``sft build``'s JSONL, whose prompt holds the options and whose answer holds the letter), and/or
action counts of a data set's train split. Without training material every learning rule is
**cross-fitted** on the audited questions themselves: two folds by video, each fold answered by
rules fitted on the other, so no answer ever informs its own question's choice. Frequencies are
then counted over the options of all the audited questions (no answer needed), each question's
own options left out: answers of the other fold would make every answer look rarer than it is,
since its own fold's occurrences are missing from them (a benchmark balanced on its own split's
frequencies, like ``prior-grid``, would look answerable for that reason alone). Cross-fitted, the
reader also leaves its bag of words out: folds of one split differ in wording (videos, people),
and where distractor texts are drawn from the split's own narrations each fold's words point
away from the other fold's answers (a reader 6 points below chance on EK100's prior-grid
validation).

Out: one result per rule, each with its accuracy, its 95% bootstrap interval (the one of
:func:`verbnoun.evaluate.metrics.accuracy_summary`) and chance (the mean of 1/options; a
multi-select question, several labels per segment, counts a pick of any true option as right, so
its chance is true options/options):

* ``prior``: the option whose action is the most frequent answer of the training material (when
  cross-fitted: the most frequent option of the other questions);
* ``overlap``: the option sharing the most verbs and nouns with the other options (by action id;
  options whose action is unknown, in SFT records, by shared words);
* ``letter``: the letter most often correct in training;
* ``length``: the longest or the shortest option text, whichever training says is right more;
* ``reader``: a **blind reader**, a logistic regression (scikit-learn) on option-level text
  features: a bag of words of the option text, its verb/noun and word overlap with the other
  options, the training frequency of its action, verb, noun and text, its length and its letter
  (features centred within the question); per question it chooses the option scored highest.

Ties are broken by a generator seeded by the rule and the question id, so an audit is
deterministic and a tie costs exactly what chance would. Questions whose truth is not among the
options (two-stage) count as wrong for every rule and are never trained on.

Python API (what the demo uses): :func:`fit_blind_reader` (training questions or SFT records ->
:class:`BlindReader`, with ``choose(question) -> int`` and ``accuracy(questions)``) and
:func:`audit_questions` (questions -> the audit as a JSON-ready dict). :func:`audit_file` is the
``verbnoun mqa audit`` command's body; :func:`read_training` reads a training file of either kind.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from verbnoun.bench import prompts
from verbnoun.bench.questions import Question
from verbnoun.errors import VerbnounError

RULES = ("prior", "overlap", "letter", "length", "reader")
DESCRIPTIONS = {
    "prior": "most frequent action in training",
    "overlap": "shares most verbs and nouns with the others",
    "letter": "letter most often right in training",
    "length": "longest or shortest, as training favours",
    "reader": "logistic regression on option text features",
}
FOLDS = 2
MIN_TRAIN = 10  # questions with a known answer, below which nothing is fitted
_WORD = re.compile(r"[a-z0-9]+")


# ----------------------------------------------------------------------------- blind items


@dataclass(frozen=True)
class BlindItem:
    """What a blind reader sees of a question: option texts, their action ids where known, and
    (to score and train) the index of the right option, -1 when it is not among them."""

    id: str
    group: str  # the video: cross-fitting folds never split one
    texts: tuple[str, ...]
    actions: tuple[str | None, ...]
    answer: int
    # a multi-select question's true options (several labels per segment): a blind pick of any
    # of them counts as right; empty for a single-answer question (``answer`` alone)
    answers: tuple[int, ...] = ()

    @property
    def right_options(self) -> tuple[int, ...]:
        """Every option that counts as right."""
        return self.answers or ((self.answer,) if self.answer >= 0 else ())

    def is_right(self, index: int) -> bool:
        return index in self.right_options


def item_of_question(question: Question) -> BlindItem:
    return BlindItem(
        question.id,
        question.video_id,
        tuple(question.option_texts),
        tuple(o.action_id for o in question.options),
        question.answer_index,
        question.answer_indices,
    )


def parse_options(task: str) -> list[str]:
    """The option texts of an MQA task text (``... selecting:\\nA. x, B. y``), in letter order."""
    start = task.rfind("\nA. ")
    if start < 0:
        raise ValueError("no options 'A. ...' in the prompt")
    text, position, texts = task[start + 1 :], 3, []
    for following in prompts.LETTERS[1:]:
        end = text.find(f", {following}. ", position)
        if end < 0:
            break
        texts.append(text[position:end])
        position = end + 5  # past ", B. "
    texts.append(text[position:])
    return texts


def item_of_record(record: Mapping) -> BlindItem | None:
    """A blind item of an SFT MQA record (``None`` for a record of another task).

    Raises ``ValueError`` naming what is wrong with an MQA record that cannot be read."""
    if record.get("question_type") not in ("mqa", "mqa_prior_actions"):
        return None
    turns = record.get("conversations")
    if not isinstance(turns, list) or len(turns) < 2 or not all(isinstance(t, dict) for t in turns):
        raise ValueError("'conversations' must hold a human and a gpt turn")
    human, answer = turns[0].get("value"), turns[1].get("value")
    if not isinstance(human, str) or not isinstance(answer, str):
        raise ValueError("conversation values must be text")
    texts = parse_options(human)
    indices = _answer_letters(answer, texts)
    index = indices[0]
    verb, noun = record.get("verb_id", -1), record.get("noun_id", -1)
    truth = None  # the answer's action: verb:noun when both are known
    if isinstance(verb, int) and isinstance(noun, int) and verb >= 0 and noun >= 0:
        truth = f"{verb}:{noun}"
    actions = tuple(truth if i == index and len(indices) == 1 else None for i in range(len(texts)))
    return BlindItem(str(record.get("id", "")), str(record.get("video", "")), tuple(texts),
                     actions, index, indices if len(indices) > 1 else ())  # fmt: skip


def _answer_letters(answer: str, texts: Sequence[str]) -> tuple[int, ...]:
    """The options a training target names: ``C. open door``, or a multi-select target's
    ``B. walk; D. eat`` (each item a letter and its option's text)."""
    match = re.match(r"([A-Z])\. ", answer)
    if match is None:
        raise ValueError(f"answer {answer[:30]!r} does not start with a letter ('C. ...')")
    index = prompts.LETTERS.index(match.group(1))
    if index < len(texts) and texts[index] == answer[match.end() :]:
        return (index,)
    indices = []
    for part in answer.split(prompts.MULTI_ANSWER_SEPARATOR):
        match = re.match(r"([A-Z])\. ", part)
        index = prompts.LETTERS.index(match.group(1)) if match else len(texts)
        if match is None or index >= len(texts) or texts[index] != part[match.end() :]:
            raise ValueError(f"answer {answer[:40]!r} is not one of the prompt's options")
        indices.append(index)
    return tuple(indices)


def as_items(source: Iterable) -> list[BlindItem]:
    """Blind items of questions, SFT records (dicts; records of other tasks are skipped) or items."""
    items = []
    for thing in source:
        if isinstance(thing, BlindItem):
            items.append(thing)
        elif isinstance(thing, Question):
            items.append(item_of_question(thing))
        elif isinstance(thing, Mapping):
            try:
                item = item_of_record(thing)
            except ValueError as error:
                raise VerbnounError(f"SFT record {thing.get('id')!r}: {error}") from None
            if item is not None:
                items.append(item)
        else:
            raise VerbnounError(f"cannot audit a {type(thing).__name__} (a question or a record)")
    return items


def read_training(path: str | Path) -> list[BlindItem]:
    """Blind items of a training file: a question file (``mqa build``) or SFT records
    (``sft build``'s JSONL, or a JSON list); only MQA records are kept. Errors name the line."""
    from verbnoun.bench.questions import read_questions
    from verbnoun.errors import FileError
    from verbnoun.fileio import read_json, read_jsonl

    path = Path(path)
    if path.suffix == ".json":
        rows = list(enumerate(read_json(path, expect=list), start=1))
    else:
        rows = read_jsonl(path, expect=None)
    if not rows:
        raise FileError(path, "no questions or SFT records")
    first = rows[0][1]
    if isinstance(first, dict) and "options" in first and "conversations" not in first:
        return [item_of_question(q) for q in read_questions(path)]
    items = []
    for number, record in rows:
        if not isinstance(record, dict) or not isinstance(record.get("conversations"), list):
            raise FileError(path, "neither a question nor an SFT record", line=number)
        try:
            item = item_of_record(record)
        except ValueError as error:
            raise FileError(path, f"bad MQA record: {error}", line=number) from None
        if item is not None:
            items.append(item)
    if not items:
        raise FileError(path, "no MQA records (question_type mqa) to train on")
    return items


# ----------------------------------------------------------------------------- features


@functools.lru_cache(maxsize=1 << 16)
def _words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


@functools.lru_cache(maxsize=1 << 16)
def _word_count(text: str) -> int:
    return len(_WORD.findall(text.lower()))


@functools.lru_cache(maxsize=1 << 16)
def _verb_noun(action: str | None) -> tuple[str | None, str | None]:
    if action is None or ":" not in action:
        return None, None
    verb, _, noun = action.partition(":")
    return verb, noun


class Frequencies:
    """How often each action, verb, noun and option text is the answer in training.

    ``actions`` (action id -> count, e.g. a data set's train split) replaces the answers' action
    counts when given. ``options=True`` counts every option instead of the answers: a table a
    reader may build from the questions it is asked without any answer (cross-fitting uses it,
    see :func:`audit_questions`). Options of SFT records whose action is unknown take the action
    most often seen with the same text."""

    def __init__(
        self,
        items: Sequence[BlindItem],
        actions: Mapping[str, int] | None = None,
        *,
        options: bool = False,
    ) -> None:
        self.text: Counter = Counter()
        self.options = options
        text_actions: dict[str, Counter] = {}
        counted: Counter = Counter()
        for item in items:
            if item.answer < 0 and not options:
                continue
            for text, action in self._counted(item, item.actions):
                self.text[text] += 1
                if action is not None:
                    counted[action] += 1
            for t, a in zip(item.texts, item.actions, strict=True):
                if a is not None:
                    text_actions.setdefault(t, Counter())[a] += 1
        self.text_action = {t: c.most_common(1)[0][0] for t, c in text_actions.items()}
        self.source = "given" if actions is not None else "options" if options else "answers"
        self.action: Counter = Counter(actions) if actions is not None else counted
        self.verb: Counter = Counter()
        self.noun: Counter = Counter()
        for action, count in self.action.items():
            verb, noun = _verb_noun(action)
            if verb is not None:
                self.verb[verb] += count
                self.noun[noun] += count

    def _counted(self, item: BlindItem, actions: Sequence[str | None]):
        """The (text, action) pairs of ``item`` this table counts."""
        if self.options:
            return list(zip(item.texts, actions, strict=True))
        return [(item.texts[k], actions[k]) for k in item.right_options]

    def own(self, item: BlindItem, actions: Sequence[str | None]) -> dict[str, Counter]:
        """What ``item`` itself added to each table (to leave it out of its own features)."""
        own = {"text": Counter(), "action": Counter(), "verb": Counter(), "noun": Counter()}
        for text, action in self._counted(item, actions):
            own["text"][text] += 1
            if action is not None and self.source != "given":
                own["action"][action] += 1
                verb, noun = _verb_noun(action)
                if verb is not None:
                    own["verb"][verb] += 1
                    own["noun"][noun] += 1
        return own

    def actions_of(self, item: BlindItem) -> list[str | None]:
        return [a if a is not None else self.text_action.get(t)
                for t, a in zip(item.texts, item.actions, strict=True)]  # fmt: skip


DENSE = (
    "verb_mates", "noun_mates", "shares", "word_mates", "words_shared", "action_known",
    "log_action_freq", "log_verb_freq", "log_noun_freq", "log_text_freq", "freq_rank",
    "chars", "words", "length_rank",
)  # fmt: skip


def _ranks(values: Sequence[float]) -> list[float]:
    """Each value's rank from the top, scaled to 0..1 (ties share the best rank)."""
    k = len(values)
    return [sum(v > x for v in values) / max(1, k - 1) for x in values]


def _shares(item: BlindItem, actions: Sequence[str | None]) -> list[tuple[int, int, int, int]]:
    """(verb mates, noun mates, word mates, words shared) of each option."""
    parts = [_verb_noun(a) for a in actions]
    words = [_words(t) for t in item.texts]
    result = []
    for i, (verb, noun) in enumerate(parts):
        vm = nm = wm = ws = 0
        for j, (v, n) in enumerate(parts):
            if j == i:
                continue
            vm += verb is not None and v == verb
            nm += noun is not None and n == noun
            common = len(words[i] & words[j])
            wm += common > 0
            ws += common
        result.append((vm, nm, wm, ws))
    return result


def _raw_rows(item: BlindItem, freq: Frequencies, own: bool = False) -> list[list[float]]:
    """The :data:`DENSE` features of each option of one item, not yet centred.

    ``own``: ``freq`` counted this item; what it added is left out (leave one out), or the fit
    would learn, say, that an answer is never unseen."""
    actions = freq.actions_of(item)
    shares = _shares(item, actions)
    mine = freq.own(item, actions) if own else None

    def count(kind: str, key: str | None) -> float:
        if key is None:
            return 0.0
        table = getattr(freq, kind)
        taken = mine[kind].get(key, 0) if mine is not None else 0
        return math.log1p(max(0, table.get(key, 0) - taken))

    log_action = [count("action", a) for a in actions]
    chars = [float(len(t)) for t in item.texts]
    freq_rank, length_rank = _ranks(log_action), _ranks(chars)
    rows = []
    for i, text in enumerate(item.texts):
        verb, noun = _verb_noun(actions[i])
        vm, nm, wm, ws = shares[i]
        rows.append([
            vm, nm, vm + nm, wm, ws, float(actions[i] is not None), log_action[i],
            count("verb", verb), count("noun", noun), count("text", text), freq_rank[i],
            chars[i], float(_word_count(text)), length_rank[i],
        ])  # fmt: skip
    return rows


def option_features(items: Sequence[BlindItem], freq: Frequencies, own: bool = False):
    """The dense features of every option of ``items`` (one row each: :data:`DENSE`, then a
    one-hot letter), centred within their question so that they say how an option differs from
    the others. A numpy array of shape (options, features)."""
    import numpy as np

    raw = [r for item in items for r in _raw_rows(item, freq, own)]
    raw = np.asarray(raw, dtype=np.float64)
    sizes = np.asarray([len(item.texts) for item in items])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    position = np.arange(len(raw)) - np.repeat(starts, sizes)
    letters = np.zeros((len(raw), len(prompts.LETTERS)))
    letters[np.arange(len(raw)), position] = 1.0
    rows = np.hstack([raw.reshape(len(raw), len(DENSE)), letters])
    means = np.add.reduceat(rows, starts, axis=0) / sizes[:, None]
    return rows - np.repeat(means, sizes, axis=0)


# ----------------------------------------------------------------------------- the reader


class BlindReader:
    """A logistic regression on option-level text features, fitted on training questions or
    SFT records; it never sees a frame. Use :func:`fit_blind_reader` to make one."""

    model_name = "logistic regression (scikit-learn) on option-level text features"

    def __init__(
        self, freq: Frequencies, vectorizer, scaler, model, trained_on: int, counts_asked: bool
    ) -> None:
        self.freq, self.vectorizer, self.scaler, self.model = freq, vectorizer, scaler, model
        self.trained_on = trained_on
        self.counts_asked = counts_asked  # its table counted the questions it is asked

    def _matrix(self, items: Sequence[BlindItem]):
        from scipy import sparse

        scaled = sparse.csr_matrix(
            self.scaler.transform(option_features(items, self.freq, self.counts_asked))
        )
        if self.vectorizer is None:
            return scaled
        texts = [t for item in items for t in item.texts]
        return sparse.hstack([scaled, self.vectorizer.transform(texts)]).tocsr()

    def scores_of(self, items: Sequence[BlindItem]) -> list[list[float]]:
        """The reader's score of every option of every item."""
        if not items:
            return []
        values = self.model.decision_function(self._matrix(items)).tolist()
        result, start = [], 0
        for item in items:
            result.append(values[start : start + len(item.texts)])
            start += len(item.texts)
        return result

    def choices(self, questions: Iterable) -> list[int]:
        """The chosen option index of each question (or SFT record, or blind item)."""
        items = as_items(questions)
        return [_argmax(s, item, "reader") for s, item in zip(self.scores_of(items), items,
                                                               strict=True)]  # fmt: skip

    def choose(self, question) -> int:
        """The option index this reader chooses for one question."""
        return self.choices([question])[0]

    def accuracy(self, questions: Iterable) -> float:
        """The share of questions it answers right (a question without its truth among the
        options counts as wrong)."""
        items = as_items(questions)
        if not items:
            return float("nan")
        chosen = self.choices(items)
        return sum(item.is_right(c) for c, item in zip(chosen, items, strict=True)) / len(items)


def fit_blind_reader(
    train: Iterable,
    *,
    frequencies: Mapping[str, int] | None = None,
    c: float = 0.1,
    table: Frequencies | None = None,
    words: bool = True,
) -> BlindReader:
    """Fit the blind reader on training questions, SFT records (MQA ones are used) or both.

    ``frequencies``: action id -> count (a data set's train split) for the frequency features;
    by default the training answers' own counts. ``table``: a frequency table that also counted
    the questions the reader will be asked (cross-fitting's option counts). ``words=False``
    leaves the bag of words out (cross-fitting does: see :func:`audit_questions`)."""
    import numpy as np
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    items = [i for i in as_items(train) if i.answer >= 0]
    if len(items) < MIN_TRAIN:
        raise VerbnounError(
            f"the blind reader needs at least {MIN_TRAIN} training questions, got {len(items)}"
        )
    freq = table if table is not None else Frequencies(items, frequencies)
    dense = option_features(items, freq, own=True)
    texts = [t for item in items for t in item.texts]
    labels = np.asarray([item.is_right(i) for item in items for i in range(len(item.texts))])
    scaler = StandardScaler().fit(dense)
    matrix = sparse.csr_matrix(scaler.transform(dense))
    vectorizer = None
    if words:
        vectorizer = CountVectorizer(binary=True, token_pattern=r"[a-z0-9]+", min_df=2)
        try:
            counted = vectorizer.fit_transform(texts)
        except ValueError:  # no word occurs twice: words say nothing
            vectorizer = CountVectorizer(binary=True, token_pattern=r"[a-z0-9]+")
            counted = vectorizer.fit_transform(texts)
        matrix = sparse.hstack([matrix, counted]).tocsr()
    model = LogisticRegression(C=c, max_iter=1000, tol=1e-3)
    model.fit(matrix, labels)
    return BlindReader(freq, vectorizer, scaler, model, len(items), table is not None)


# ----------------------------------------------------------------------------- simple rules


def _rng(rule: str, item: BlindItem) -> random.Random:
    return random.Random(f"verbnoun-audit:{rule}:{item.id}")


def _argmax(values: Sequence[float], item: BlindItem, rule: str) -> int:
    """The index of the largest value; ties broken by the rule's generator for this item."""
    best = max(values)
    tied = [i for i, v in enumerate(values) if v == best]
    return tied[0] if len(tied) == 1 else _rng(rule, item).choice(tied)


class SimpleRules:
    """The rules that need only counts from training: prior, overlap, letter, length."""

    def __init__(
        self,
        train: Sequence[BlindItem],
        frequencies: Mapping[str, int] | None = None,
        table: Frequencies | None = None,
    ) -> None:
        train = [i for i in train if i.answer >= 0]
        self.freq = table if table is not None else Frequencies(train, frequencies)
        self.letters = Counter(k for i in train for k in i.right_options)
        longest = sum(i.is_right(self.choose_length(i, +1)) for i in train)
        shortest = sum(i.is_right(self.choose_length(i, -1)) for i in train)
        self.length_sign = +1 if longest >= shortest else -1

    def choose_length(self, item: BlindItem, sign: int) -> int:
        return _argmax([sign * len(t) for t in item.texts], item, "length")

    def choose(self, rule: str, item: BlindItem) -> int:
        if rule == "prior":  # counts of the table (an option count the same for all options)
            actions = self.freq.actions_of(item)
            counts = [self.freq.action.get(a, 0) if a is not None else 0 for a in actions]
            return _argmax(counts, item, rule)
        if rule == "overlap":
            shares = _shares(item, self.freq.actions_of(item))
            known = all(a is not None for a in item.actions)
            values = [vm + nm if known else ws for vm, nm, _, ws in shares]
            return _argmax(values, item, rule)
        if rule == "letter":
            k = len(item.texts)
            return max(range(k), key=lambda i: (self.letters.get(i, 0), -i))
        if rule == "length":
            return self.choose_length(item, self.length_sign)
        raise ValueError(f"unknown rule {rule!r}")


# ----------------------------------------------------------------------------- the audit


def fold_of(key: str, folds: int = FOLDS) -> int:
    """The cross-fitting fold of a video (or question) id: a stable hash, the same in every run."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16) % folds


def _choices(
    test: Sequence[BlindItem],
    train: Sequence[BlindItem],
    frequencies,
    rules: Sequence[str],
    table: Frequencies | None = None,
) -> dict[str, list[int]]:
    simple = SimpleRules(train, frequencies, table)
    result = {rule: [simple.choose(rule, item) for item in test] for rule in rules
              if rule != "reader"}  # fmt: skip
    if "reader" in rules:
        reader = fit_blind_reader(train, frequencies=frequencies, table=table,
                                  words=table is None)  # fmt: skip
        result["reader"] = reader.choices(test)
    return result


def audit_questions(
    questions: Iterable,
    train: Iterable | None = None,
    *,
    frequencies: Mapping[str, int] | None = None,
    rules: Sequence[str] = RULES,
) -> dict:
    """The blind audit of ``questions`` (questions, SFT records or blind items).

    ``train``: questions and/or SFT records to fit the learning rules on; ``None`` cross-fits
    them on the audited questions (two folds by video). ``frequencies``: action id -> count of a
    train split, used by ``prior`` (and the reader) instead of the training answers' counts.
    Returns ``{"questions", "chance", "train", "rules": {rule: {"accuracy", "ci95", "correct",
    "n", "gain", "description"}}, "best": {...}, "reader": {...}}``; ``gain`` is accuracy
    minus chance.
    """
    from verbnoun.evaluate.metrics import accuracy_summary

    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise VerbnounError(f"unknown audit rule(s) {unknown}; choose from {list(RULES)}")
    items = as_items(questions)
    if not items:
        raise VerbnounError("no questions to audit")
    chosen: dict[str, list[int]]
    if train is not None:
        train_items = as_items(train)
        usable = sum(i.answer >= 0 for i in train_items)
        if usable < MIN_TRAIN:
            raise VerbnounError(
                f"the training material holds {usable} questions with an answer, need {MIN_TRAIN}"
            )
        chosen = _choices(items, train_items, frequencies, rules)
        train_info = {"mode": "on the training material", "questions": usable}
    else:
        folds = [fold_of(i.group or i.id) for i in items]
        if len(set(folds)) < FOLDS:  # one video: fold by question instead
            folds = [fold_of(i.id) for i in items]
        chosen = {rule: [0] * len(items) for rule in rules}
        # counts from the options of all the questions (no answer needed), each question's own
        # options left out of its features: counts from the other fold's answers would make
        # an answer look rarer than it is (its own fold's occurrences are missing)
        table = Frequencies(items, frequencies, options=True)
        for fold in range(FOLDS):
            test = [i for i, f in enumerate(folds) if f == fold]
            fit = [items[i] for i, f in enumerate(folds) if f != fold]
            if sum(i.answer >= 0 for i in fit) < MIN_TRAIN or not test:
                raise VerbnounError(
                    f"too few questions ({len(items)}) to cross-fit the blind rules; "
                    "give training material (--train)"
                )
            part = _choices([items[i] for i in test], fit, frequencies, rules, table)
            for rule, picks in part.items():
                for index, pick in zip(test, picks, strict=True):
                    chosen[rule][index] = pick
        train_info = {"mode": f"cross-fit ({FOLDS} folds by video)", "questions": len(items)}
    chance = sum(max(len(i.right_options), 1) / len(i.texts) for i in items) / len(items)
    results = {}
    for rule in rules:
        right = [i.is_right(c) for c, i in zip(chosen[rule], items, strict=True)]
        summary = accuracy_summary(right)
        results[rule] = {
            "accuracy": summary["accuracy"],
            "ci95": summary["ci95"],
            "correct": summary["correct"],
            "n": summary["n"],
            "gain": summary["accuracy"] - chance,
            "description": DESCRIPTIONS[rule],
        }
    best = max(rules, key=lambda r: results[r]["accuracy"])
    source = "given action counts" if frequencies is not None else "training answers"
    if frequencies is None and train is None:
        source = "the options of the other audited questions"
    best_result = {k: results[best][k] for k in ("accuracy", "ci95", "gain")}
    return {
        "questions": len(items),
        "chance": chance,
        "train": {**train_info, "frequencies": source},
        "rules": results,
        "best": {"rule": best, **best_result, "chance": chance},
        "reader": {"model": BlindReader.model_name, "features": [*DENSE, "letter", "words"]},
    }


def answerable_without_looking(name: str, questions: Sequence[Question]) -> dict | None:
    """The report's finding for one benchmark: its best blind rule (cross-fitted on its own
    questions) against chance; ``None`` when it has too few questions to cross-fit.

    ``answerable``: the best rule beats chance by a one-sided exact binomial test at 0.05,
    Bonferroni-corrected for picking the best of the rules (``p_value`` is corrected)."""
    from scipy.stats import binomtest

    try:
        audit = audit_questions(questions)
    except VerbnounError:
        return None
    best = audit["best"]
    result = audit["rules"][best["rule"]]
    chance = min(max(audit["chance"], 1e-12), 1.0)
    tail = binomtest(result["correct"], result["n"], chance, alternative="greater").pvalue
    p_value = min(1.0, tail * len(audit["rules"]))
    return {
        "benchmark": name,
        "rule": best["rule"],
        "accuracy": best["accuracy"],
        "ci95": best["ci95"],
        "chance": audit["chance"],
        "gain": best["gain"],
        "p_value": p_value,
        "answerable": p_value < 0.05,
        "rules": len(audit["rules"]),
    }


def render_audit(audit: dict, title: str) -> None:
    """Print an audit as a rich table, the rules explained below it."""
    from rich.console import Console
    from rich.table import Table

    train = audit["train"]
    legend = "; ".join(f"{name}: {DESCRIPTIONS[name]}" for name in audit["rules"])
    caption = (f"chance {100 * audit['chance']:.1f}% (mean 1/options); rules fitted: "
               f"{train['mode']}, {train['questions']} questions, frequencies from "
               f"{train['frequencies']}. {legend}")  # fmt: skip
    table = Table(title=title, caption=caption, caption_justify="left")
    for column in ("rule", "accuracy", "95% interval", "over chance"):
        table.add_column(column, justify="left" if column == "rule" else "right")
    for name, result in audit["rules"].items():
        low, high = result["ci95"]
        table.add_row(
            name, f"{100 * result['accuracy']:.1f}%", f"{100 * low:.1f}-{100 * high:.1f}%",
            f"{100 * result['gain']:+.1f} points",
        )  # fmt: skip
    Console().print(table)


def audit_file(
    questions: str | Path,
    train: Sequence[str | Path] = (),
    *,
    dataset=None,
    out: str | Path | None = None,
) -> dict:
    """``verbnoun mqa audit``: read, audit, and write the JSON (atomically) when ``out`` is given.

    ``dataset``: an open data set whose train split's action counts drive the ``prior`` rule and
    the reader's frequency features."""
    import time

    from verbnoun.bench.questions import read_questions
    from verbnoun.fileio import sha256_file, write_json

    started = time.perf_counter()
    audited = read_questions(questions)
    train_items = [item for path in train for item in read_training(path)]
    frequencies = None
    if dataset is not None:
        segments = dataset.segments("train", require_labels=True)
        frequencies = Counter(s.action_id for s in segments)
    result = audit_questions(audited, train_items or None, frequencies=frequencies)
    report = {
        "kind": "verbnoun.mqa_audit",
        "questions_file": str(questions),
        "questions_sha256": sha256_file(questions),
        "train_files": [{"path": str(p), "sha256": sha256_file(p)} for p in train],
        **result,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if out is not None:
        write_json(out, report)
    return report
