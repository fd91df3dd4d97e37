"""The actions a sentence names: where each verb is, what opened its clause, where its object is.

In: one sentence's tokens (:func:`verbnoun.interpret.free_text.tokens`) and a lexicon of the data
set's verb forms. Out: the actions in order (:class:`Action`), or ``None`` when the sentence is a
refusal ("I cannot tell what the person is doing"). Rules, in the order they apply:

* a **verb** is a word (or particle pair) the lexicon lists, in a place where English puts a
  verb: at the start of a clause ("Pick up the knife", "Opening the fridge"), after a subject
  ("The person picks", "I grab", "Hands kneading"), after an auxiliary, hedge or adverb ("is
  seen cutting", "appears to be washing", "has just opened", "carefully peels"), after "to", or
  as a finite form once a subject was seen ("A woman in a red apron slices bread"); never right
  after a determiner or possessive ("the cut", "his hands") and never as the subject of an
  auxiliary ("Water is poured");
* words that only frame the action are passed over: aspect verbs before another verb
  ("continues stirring", "starts to cut"), perception of an event ("I see the person cutting"),
  "looks like", auxiliaries that are also verbs ("has opened", "gets washed");
* a **passive** ("The pan is being washed", "The tap is turned off") takes its object from the
  subject before the auxiliary;
* a **refusal** word before the first verb ("not", "cannot", "sorry", "unclear", "no") makes the
  sentence a non-answer, unless a contrast ("but", "however") follows: parsing resumes there.

Which action was performed first (``first_performed``): the first, except "Before X-ing A, the
person Ys B" and "The person Ys B after X-ing A" (then the other one), "use X to Y" / "Using
X, ... Y" (the instrument's verb gives way to Y) and "has X and is Y-ing" (a state gives way).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from verbnoun.interpret.free_text import (
    ASPECT,
    AUXILIARIES,
    BE_FORMS,
    CLAUSE_MARKS,
    CONTRAST,
    DETERMINERS,
    FRAME_NOUNS,
    HEDGES,
    PERCEPTION,
    POSSESSIVES,
    PREPOSITIONS,
    PRONOUNS,
    REFUSAL,
    SUBJECT_NOUNS,
    SUBJECTS,
    is_participle,
    is_past,
    verb_lemmas,
    word_set,
)

if TYPE_CHECKING:
    from verbnoun.interpret.lexicon import Entry, Lexicon

# Contractions whose "t" is a negation: can't, don't, doesn't, isn't, won't, ...
_NEGATED = word_set(
    "can don doesn didn isn aren wasn weren won wouldn couldn shouldn haven hasn hadn ain"
)
# After these an object follows a verb; a noun-like word after "and" needs one to be a verb.
_OBJECT_STARTS = DETERMINERS | POSSESSIVES | PRONOUNS | word_set("up down out off away back")
_USE = word_set("use uses used using")
_LOOK = word_set("look looks looked looking seem seems seemed")
# Prepositions after which an -ing form is a verb: "by cutting", "in the process of peeling".
_NOT_DONE = word_set("to once when until if")
_RELATIVE = word_set("who which whose")
_HYPOTHETICAL = word_set("if whether unless")
_FRAMING_HEDGES = HEDGES - word_set("to like process")
_KNOWN = (
    SUBJECTS | AUXILIARIES | HEDGES | ASPECT | CLAUSE_MARKS | DETERMINERS | POSSESSIVES
    | PREPOSITIONS | PRONOUNS | REFUSAL | CONTRAST | word_set("to s not")
)  # fmt: skip
_VERB_CONTEXT = SUBJECTS | AUXILIARIES | HEDGES | CLAUSE_MARKS | word_set("to")
_ING_AFTER = word_set("by of for without through")
# Verbs that are also auxiliaries, and what makes them one: "has opened", "has been", "gets
# washed" (but "get spoon", "have the knife" are actions of EK100's take and carry classes).
_PERFECT = word_set("have has had having")
_PASSIVE_GET = word_set("get gets got getting")
_WALK_BACK = (
    SUBJECTS | AUXILIARIES | HEDGES | ASPECT | CLAUSE_MARKS | DETERMINERS | POSSESSIVES
    | frozenset({"to", "s", "not"})
)  # fmt: skip


@dataclass(frozen=True)
class Action:
    """One verb of a sentence.

    ``start``/``end``: the verb's tokens (``end`` after a particle next to it); ``mark``: the
    word that opened its clause (``before``, ``after``, ``and``, ``to``, ``,``, ... or ``None``
    at the sentence start); ``subject``: for a passive, the tokens of its subject (the object).
    """

    start: int
    end: int
    entry: Entry
    method: str
    mark: str | None
    passive_subject: tuple[int, int] | None = None


def _ends_adverb(word: str) -> bool:
    return len(word) > 4 and word.endswith("ly")


def _refuses(toks: list[str], i: int) -> bool:
    word = toks[i]
    if word not in REFUSAL:
        return False
    if word == "t":
        return i > 0 and toks[i - 1] in _NEGATED
    if word == "no":  # "No, ..." answers a question; "no action" refuses
        return not (i + 1 < len(toks) and toks[i + 1] == ",")
    return True


class ClauseFinder:
    """Finds the actions of a sentence with a lexicon's verb forms (see the module docstring)."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon

    def actions(self, toks: list[str]) -> list[Action] | None:
        """The actions of one sentence in order; ``None`` for a refusal."""
        lexicon = self.lexicon
        found: list[Action] = []
        n = len(toks)
        i, mark, subject_seen, clause_start = 0, None, False, 0
        while i < n:
            word = toks[i]
            if word in CLAUSE_MARKS:  # a comma may close an apposition: "The person, who ..."
                mark, clause_start = word, i + 1
                subject_seen = subject_seen and word == ","
                i += 1
                continue
            if not found and _refuses(toks, i):
                resume = next((k for k in range(i + 1, n) if toks[k] in CONTRAST), None)
                if resume is None:
                    return None
                i, mark, subject_seen, clause_start = resume + 1, None, False, resume + 1
                continue
            if word == "to":  # a purpose: "..., probably to put it on the stove"
                if found:  # (before any action it is "appears to", "tries to")
                    mark = "to" if mark in (None, ",") else mark
                i += 1
                continue
            if word in HEDGES or word == "not":
                i += 1
                continue
            if word in _RELATIVE and subject_seen:  # "The person, who is wearing an apron, ..."
                close = next((k for k in range(i + 1, n) if toks[k] == ","), None)
                if close is not None:
                    i = close + 1
                    continue
            if word in ASPECT:
                j = i + 1 + (i + 1 < n and toks[i + 1] in ("to", "on", "with", "by"))
                if j < n and lexicon.is_verb_word(toks[j]):
                    i = j
                    continue
            verb = lexicon.verb_at(toks, i)
            last_end = found[-1].end if found else -1
            if (
                verb is not None
                and i > last_end  # not the word right after a verb: "get spoon"
                and self._verb_place(toks, i, subject_seen)
                and not self._frames_only(toks, i, verb[1])
                and not (subject_seen and self._modifier(toks, i))
            ):
                entry, used, method = verb
                passive = self._passive_subject(toks, i, clause_start)
                if mark not in _HYPOTHETICAL:  # "... to tell if the person opens the fridge"
                    found.append(Action(i, i + used, entry, method, mark, passive))
                i, mark, subject_seen = i + used, None, False
                continue
            if word in SUBJECTS:
                subject_seen = True
            i += 1
        return found

    # -- is the word at i in a place where English puts a verb?
    def _verb_place(self, toks: list[str], i: int, subject_seen: bool) -> bool:
        word = toks[i]
        prev = toks[i - 1] if i > 0 else None
        after = toks[i + 1] if i + 1 < len(toks) else None
        lexicon = self.lexicon
        if word in SUBJECT_NOUNS:  # "hands kneading", "the hand picks": a subject
            return (
                prev is None
                and after is not None
                and lexicon.is_noun_word(after)
                and not lexicon.is_verb_word(after)
            )
        if prev in DETERMINERS and word.endswith("ing") and after == "of":
            return True  # "the washing of a pan"
        if prev is not None and (prev in DETERMINERS or prev in POSSESSIVES or prev.isdigit()):
            return False
        if self._noun_before_verb(toks, i):
            return False  # "cutting board being washed", "close-up of a person"
        if prev == "s":  # "he's cutting" (is) but "the person's hands" (possessive)
            return word.endswith("ing") or (i > 1 and toks[i - 2] in SUBJECTS)
        if (after in BE_FORMS or after in _PERFECT) and not word.endswith("ing"):
            return False  # the subject of an auxiliary: "water is poured"
        if prev is None or prev in CLAUSE_MARKS:
            if prev in ("and", "or", ",") and lexicon.is_noun_word(word):
                # "knife and fork", "salt and pepper": a noun unless an object follows
                inflected = word.endswith(("ing", "ed"))
                return inflected or after in _OBJECT_STARTS
            return True
        if prev in SUBJECTS or prev in AUXILIARIES or prev in HEDGES or prev in ASPECT:
            return True
        if _ends_adverb(prev):  # "carefully peels", but "freshly ground pepper" is a noun
            return not self._adjective(toks, i)
        if prev in ("to", "not"):
            return True
        if prev in PREPOSITIONS:  # "by cutting", "in the process of peeling"
            return prev in _ING_AFTER and word.endswith("ing")
        if self._unknown_verb(toks, i - 1):  # "tries to pry open", "Chef Anna opens"
            return True
        if (  # "The janitor removes the lid": a noun phrase, then a finite verb
            toks[0] in DETERMINERS
            and self._finite(word, prev or "")
            and not any(lexicon.is_verb_word(w) for w in toks[1:i])
        ):
            return True
        # a verb after a longer subject: "A woman in a red apron slices bread", "A person is
        # seen in the kitchen opening the microwave"
        if not subject_seen:
            return False
        ing = word.endswith("ing") and bool(verb_lemmas(word)) and not lexicon.is_noun_word(word)
        return ing or self._finite(word, prev)

    def _adjective(self, toks: list[str], i: int) -> bool:
        """A participle used as an adjective: no object, particle or end follows it."""
        word = toks[i]
        if word.endswith("ing") or not is_participle(word):
            return False
        after = toks[i + 1] if i + 1 < len(toks) else None
        if after is None or after in PREPOSITIONS or after in CLAUSE_MARKS:
            return False
        return not (after in DETERMINERS or after in POSSESSIVES or after in PRONOUNS)

    def _unknown_verb(self, toks: list[str], k: int) -> bool:
        """Whether ``toks[k]`` is a word of no list, in a verb's place (a verb the class lists
        lack, or a name): the verb after it then completes it."""
        word = toks[k]
        if word in _KNOWN or self.lexicon.is_noun_word(word) or self.lexicon.is_verb_word(word):
            return False
        before = toks[k - 1] if k > 0 else None
        return before is None or before in _VERB_CONTEXT

    def _noun_before_verb(self, toks: list[str], i: int) -> bool:
        """A verb-looking word that starts a noun: a lexicon noun phrase followed by an
        auxiliary ("frying pan is washed"), or a word followed by "of" ("close-up of")."""
        n = len(toks)
        for k in range(min(n, i + self.lexicon.max_noun_words), i + 1, -1):
            if k < n and toks[k] in BE_FORMS and self.lexicon.noun_span(tuple(toks[i:k])):
                return True
        if self.lexicon.verb_at(toks, i)[1] > 1:  # type: ignore[index]
            return False  # "let go of", "dispose of"
        j = i + 1 + (i + 1 < n and toks[i + 1] in PREPOSITIONS and toks[i + 1] != "of")
        return j < n and toks[j] == "of"

    def _modifier(self, toks: list[str], i: int) -> bool:
        """An -ing form right after the subject that only describes it, because the sentence's
        own verb comes later: "The person wearing an apron is cutting bread", "The person,
        holding a bowl, whisks the eggs", "The person holding a knife removes the lid"."""
        prev = toks[i - 1] if i > 0 else None
        if not toks[i].endswith("ing") or not (prev in SUBJECTS or prev == ","):
            return False
        n, lexicon = len(toks), self.lexicon
        for j in range(i + 2, n):
            word, before = toks[j], toks[j - 1]
            if word in CLAUSE_MARKS and word != ",":
                return False
            framing = word in AUXILIARIES or word in ASPECT or word in _FRAMING_HEDGES
            if framing and any(lexicon.is_verb_word(w) for w in toks[j + 1 : j + 4]):
                return True  # "... is cutting", "... has removed", "... seems to remove"
            if self._finite(word, before):
                return True
        return False

    def _finite(self, word: str, before: str) -> bool:
        """Whether ``word`` is a finite form of a lexicon verb (``removes``, ``removed``) that
        is no noun and follows no determiner ("the plates" is a noun)."""
        if word.endswith("ing") or self.lexicon.is_noun_word(word):
            return False
        if not verb_lemmas(word) and not is_past(word):  # "opens", "opened", "put"
            return False
        if before in DETERMINERS or before in POSSESSIVES:
            return False
        return self.lexicon.is_verb_word(word)

    # -- verbs that only frame another: "I see the person cutting", "looks like", "has opened"
    def _frames_only(self, toks: list[str], i: int, used: int) -> bool:
        word = toks[i]
        n = len(toks)
        after = toks[i + 1] if i + 1 < n else None
        if word in PERCEPTION or word in ("view", "views", "viewing"):
            # "I see the person cutting", "what we see here is ...", "to see the video"
            ahead = toks[i + 1 : i + 4]
            if any(w in SUBJECTS or w in BE_FORMS or w in ("that", "how", "what") for w in ahead):
                return True
            answerer = any(w in ("i", "we", "me", "to") for w in toks[max(0, i - 4) : i])
            if answerer and any(w in FRAME_NOUNS for w in ahead):
                return True  # the answerer speaking of the recording, not the person's action
            if i > 0 and toks[i - 1] in ("what", "can", "could"):
                return True
        if word in _LOOK and (after in ("like", "as") or toks[i + 1 : i + 3] == ["to", "be"]):
            return True
        if (word in _PERFECT or word in _PASSIVE_GET) and used == 1:
            j = i + 1
            while j < n and (toks[j] in HEDGES or toks[j] == "not" or _ends_adverb(toks[j])):
                j += 1
            if j >= n:
                return False
            if word in _PERFECT and toks[j] in ("been", "to"):
                return True
            return is_participle(toks[j]) and self.lexicon.is_verb_word(toks[j])
        return False

    # -- a passive: participle after a form of "be" whose subject is not an actor
    def _passive_subject(self, toks: list[str], i: int, clause_start: int):
        word = toks[i]
        if word.endswith("ing") or not is_participle(word):
            return None
        after = toks[i + 1] if i + 1 < len(toks) else None
        if after is not None and (after in DETERMINERS or self.lexicon.is_noun_word(after)):
            return None  # an object follows: "The action is cut onion" is not a passive
        j = i - 1
        while j >= clause_start and (toks[j] in HEDGES or _ends_adverb(toks[j])):
            j -= 1
        if j < clause_start or toks[j] not in BE_FORMS:
            return None
        while j >= clause_start and (toks[j] in AUXILIARIES or toks[j] in HEDGES):
            j -= 1
        subject = toks[clause_start : j + 1]
        if any(w in SUBJECTS for w in subject) or not any(
            self.lexicon.is_noun_word(w) for w in subject
        ):
            return None
        return (clause_start, j + 1)


def object_end(toks: list[str], actions: list[Action], k: int) -> int:
    """Where the object of action ``k`` can reach: the next action's clause (its mark, subject
    and auxiliaries) or the end of the sentence."""
    if k + 1 >= len(actions):
        return len(toks)
    end = actions[k + 1].start
    while end > actions[k].end and (toks[end - 1] in _WALK_BACK or _ends_adverb(toks[end - 1])):
        end -= 1
    return end


def first_performed(toks: list[str], actions: list[Action]) -> int:
    """Index of the action performed first (see the module docstring)."""
    if len(actions) > 1 and toks[actions[0].start] in _USE and actions[1].mark in ("to", ","):
        return 1 + first_performed(toks, actions[1:])
    if len(actions) > 1 and toks[actions[0].start] in _PERFECT:  # "has a knife and is cutting"
        return 1 + first_performed(toks, actions[1:])
    if len(actions) > 1 and (actions[0].mark == "before" or actions[1].mark == "after"):
        earlier = 0 if actions[0].mark == "before" else 1
        if toks[actions[earlier].end : object_end(toks, actions, earlier)]:
            return 1  # not "... after cooking": an action without an object is only a time

    return 0


def performed(toks: list[str], actions: list[Action]) -> list[int]:
    """The indices of the actions the sentence says were done: not a purpose or a condition
    ("opens the door to look inside", "once the water is boiling"), not "use X" (an
    instrument)."""
    return [
        k
        for k, a in enumerate(actions)
        if a.mark not in _NOT_DONE
        and toks[a.start] not in _USE
        and not (toks[a.start] in _PERFECT and k + 1 < len(actions))
    ]


def counted(toks: list[str], actions: list[Action]) -> int:
    """How many actions the sentence says were done (:func:`performed`)."""
    return len(performed(toks, actions))
