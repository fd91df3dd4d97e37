"""Free text as models write it -> the sentences and words the open-vocabulary mapper reads.

In: a model's raw output (plain text, markdown, JSON, a refusal). Out: its sentences, cleaned,
in order (:func:`answer_sentences`), each as lower-case tokens with commas and colons kept as
clause marks (:func:`tokens`); and the closed word classes of English that the clause finder
(:mod:`verbnoun.interpret.clauses`) needs: subjects, auxiliaries, hedges, aspect verbs, refusal
words, adverbs. Everything here is rules and word lists; word forms come from ``lemminflect``
(its data ship inside the wheel, nothing downloads).

Why no part-of-speech tagger: the usual small English taggers ship their models outside the
package registry (spaCy's ``en_core_web_sm`` is a GitHub release, NLTK's tagger and Stanza's
models download at run time); the copies on PyPI are re-uploads by third parties, which this
project does not use. Answers to "what is the person doing?" are short and formulaic, so a
handful of word classes and the class lists' own verb forms decide the verb well enough.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache


def word_set(text: str) -> frozenset[str]:
    """The words of ``text`` as a set (for the word lists below)."""
    return frozenset(text.split())


# Who does the action: pronouns and the nouns that models use for the actor. A verb may follow.
SUBJECTS = word_set(
    "i me we you he she they someone somebody anyone one c person persons people man men woman women "
    "individual individuals user wearer participant subject actor chef cook guy lady boy girl "
    "adult child figure human worker hand hands arm arms finger fingers left right other "
    "cameraman camerawoman kid operator baker resident student parent mother father mom dad"
)
# Subject nouns that are also verb forms of some data sets ("hand" in EK100's hang class): never
# a verb unless they open a narration and an object follows ("hand cloth").
SUBJECT_NOUNS = word_set("hand hands arm arms finger fingers")
# Auxiliaries, modals and their contracted forms ("I'm" -> i m, "I've" -> i ve).
AUXILIARIES = word_set(
    "am is are was were be being been m s re ve d ll has have had do does did will would can "
    "could shall should must may might get gets got getting"
)
BE_FORMS = word_set("is are was were be being been s re m get gets got getting")
# Words between the subject and the verb that say how the action is seen or reported.
HEDGES = word_set(
    "seem seems seemed seeming appear appears appeared appearing to seen shown observed "
    "depicted pictured captured visible spotted noticed filmed recorded shown currently "
    "actively busy engaged process like probably possibly likely apparently seemingly "
    "presumably clearly visibly evidently now just then still again also first next finally "
    "already once further immediately subsequently afterwards meanwhile simultaneously here there"
)
# Verbs of aspect followed by the real verb: "continue stirring", "starts to cut".
ASPECT = word_set(
    "continue continues continued continuing keep keeps kept keeping start starts started "
    "starting begin begins began begun beginning try tries tried trying finish finishes finished "
    "finishing go goes went going proceed proceeds proceeded proceeding attempt attempts "
    "attempted attempting want wants wanted need needs needed about prepare prepares prepared "
    "preparing stop stops stopped stopping"
)
# Verbs of perception that introduce a whole event ("I see the person cutting bread").
PERCEPTION = word_set("see sees saw seeing watch watches watched watching notice notices")
# Words that make a sentence a refusal or a non-answer when they come before its verb.
REFUSAL = word_set(
    "not no cannot t unable sorry unclear unsure uncertain impossible unknown nothing apologize "
    "apologise unfortunately none nobody typical typically usually generally commonly "
    "hypothetical hypothetically"
)
# Words that end a refusal's reach: "I'm not sure, but the person is cutting bread".
CONTRAST = word_set("but however though although yet")
DETERMINERS = word_set(
    "the a an some my your his her their its our this that these those another any each every "
    "few several both all more little bit one two three four five six both either other same "
    "whole entire"
)
POSSESSIVES = word_set("my your his her their its our")
PRONOUNS = word_set("it them this that these those one ones him her itself themselves something")
PREPOSITIONS = word_set(
    "in into inside on onto upon from with to at under over out off up down away back around "
    "through by for of across along against between behind beside near towards toward within "
    "without using onto unto underneath above below"
)
CONJUNCTIONS = word_set("and or then while but before after as so when once until whilst")
# Words that open a new clause: a verb right after them starts another action.
CLAUSE_MARKS = word_set(
    ", : and or then while but before after when once whilst until so also if whether unless"
)
# Quantities before "of": the noun is what follows ("a sheet of foil", "a pinch of salt").
PARTITIVES = word_set(
    "piece pieces slice slices bit bits sheet sheets pinch pinches handful handfuls bunch "
    "bunches dash splash drop drops sprig sprigs spoonful spoonfuls couple pair lot lots amount "
    "amounts portion portions chunk chunks strip strips pile piles layer layers cube cubes "
    "dollop dollops clump clumps sliver slivers wedge wedges round rounds half halves quarter "
    "quarters stack stacks block blocks roll rolls loaf loaves bowlful glassful cupful bite bites"
)
# Everyday English words that a data set's class lists may spell otherwise (American and
# British usage, common synonyms). Applied to the answer's words; a rewrite only matters when
# the class lists hold the result.
NOUN_VARIANTS = {
    ("faucet",): ("tap",),
    ("faucets",): ("taps",),
    ("trash", "can"): ("bin",),
    ("trash", "cans"): ("bins",),
    ("garbage", "can"): ("bin",),
    ("garbage", "cans"): ("bins",),
    ("trashcan",): ("bin",),
    ("skillet",): ("frying", "pan"),
    ("skillets",): ("frying", "pans"),
    ("zucchini",): ("courgette",),
    ("zucchinis",): ("courgettes",),
    ("eggplant",): ("aubergine",),
    ("eggplants",): ("aubergines",),
    ("scallion",): ("spring", "onion"),
    ("scallions",): ("spring", "onions"),
    ("green", "onion"): ("spring", "onion"),
    ("green", "onions"): ("spring", "onions"),
    ("arugula",): ("rocket",),
    ("aluminum",): ("aluminium",),
    ("yogurt",): ("yoghurt",),
    ("cling", "wrap"): ("cling", "film"),
    ("saran", "wrap"): ("cling", "film"),
    ("cooktop",): ("hob",),
    ("stovetop",): ("stove", "top"),
    ("countertop",): ("counter", "top"),
    ("countertops",): ("counter", "tops"),
    ("salt", "shaker"): ("salt", "cellar"),
    ("baking", "sheet"): ("baking", "tray"),
    ("cookie", "sheet"): ("baking", "tray"),
    ("sheet", "pan"): ("baking", "tray"),
    ("pantry",): ("cupboard",),
    ("chili",): ("chilli",),
    ("chile",): ("chilli",),
    ("chilies",): ("chillies",),
    ("chilis",): ("chillies",),
    ("chiles",): ("chillies",),
}
# Verb phrases that say one verb (base forms; every inflection of the first word follows).
PHRASE_VARIANTS = {
    ("take", "a", "look"): "look", ("have", "a", "look"): "look",
    ("take", "a", "sip"): "drink", ("take", "a", "bite"): "eat",
    ("have", "a", "sip"): "drink", ("have", "a", "bite"): "eat",
    ("do", "the", "dishes"): "wash the dishes", ("do", "the", "washing", "up"): "wash the dishes",
}  # fmt: skip
# Verbs (base forms; every inflection follows): cooking and cleaning words the lists may lack.
VERB_VARIANTS = {
    "saute": "fry", "sear": "fry", "simmer": "boil", "mince": "chop", "trim": "cut",
    "carve": "cut", "snip": "cut", "sip": "drink", "refill": "fill", "zest": "grate",
    "organise": "sort", "organize": "sort", "vacuum": "hoover",
}  # fmt: skip

_VARIANT_STARTS = frozenset(k[0] for k in NOUN_VARIANTS)
_TOKEN = re.compile(r"[a-z0-9]+|[,:]")
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE_END = re.compile(
    r"((?<!\d)[.!?;](?!\d)|\n|\s[-\u2013\u2014]+\s|[\u2013\u2014]|\s\d{1,2}[.)]\s)"
)
_LIST_MARK = re.compile(r"^\s*(?:[-*+\u2022>]+|\d+[.)])\s+")
_LABEL = re.compile(r"^\s*([A-Za-z][A-Za-z0-9 '\-]{0,40}?)\s*[:=]\s*(?=\S)")
_VERB_NOUN = re.compile(
    r"\bverb\s*[:=]\s*([A-Za-z][\w -]*?)\s*(?:[,;\n]|$).*?\bnoun\s*[:=]\s*([A-Za-z][\w: -]*)",
    re.IGNORECASE | re.DOTALL,
)
_ASIDE = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|<[^<>]{1,40}>")
_MARKUP = re.compile(r"[*_`#~]+")
_JSON_KEYS = ("answer", "action", "narration", "description", "caption", "response")


def plain(text: str) -> str:
    """Accents folded to ASCII ("sauté" -> "saute"); curly quotes and apostrophes made plain."""
    if text.isascii():
        return text
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    folded = unicodedata.normalize("NFKD", text)
    return "".join(c for c in folded if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits); hyphens and apostrophes split words."""
    return _WORD.findall(plain(text).lower())


def tokens(text: str) -> list[str]:
    """Lower-cased words with commas and colons kept as tokens (they mark clauses)."""
    return _TOKEN.findall(plain(text).lower())


def _from_json(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if not isinstance(data, dict):
        return text
    for key in _JSON_KEYS:
        if isinstance(data.get(key), str):
            return data[key].strip()
    if isinstance(data.get("verb"), str) and isinstance(data.get("noun"), str):
        return f"{data['verb']} {data['noun']}"
    return text


def answer_sentences(raw: str) -> list[str]:
    """The sentences of a model's output, cleaned, in order, none empty.

    A JSON object gives its ``answer`` (or ``action``, ``narration``, ...); markdown emphasis,
    headings, list marks, code marks, quotes and parenthetical asides are dropped; a short label
    before a colon ("Answer:", "The action is:", "**Action:**") is dropped; sentences end at
    ``.!?;``, a line break or a spaced dash; questions ("Could you share the video?") are
    dropped.
    """
    text = raw.strip()
    if text.startswith("{"):
        text = _from_json(text)
    text = _ASIDE.sub(" ", text)
    pair = _VERB_NOUN.search(_MARKUP.sub(" ", text))
    if pair is not None:  # "Verb: cut, Noun: onion" (a structured answer in words)
        text = f"{pair.group(1).strip()} {pair.group(2).strip()}"
    sentences = []
    for line in text.splitlines():
        line = _MARKUP.sub(" ", _LIST_MARK.sub(" ", line))
        parts = _SENTENCE_END.split(line)  # sentence, its end, sentence, its end, ...
        for sentence, end in zip(parts[::2], [*parts[1::2], ""], strict=True):
            if end == "?":
                continue  # a question back is not an answer
            while True:  # "Answer: The action is: ..." has two labels
                label = _LABEL.match(sentence)
                if label is None or len(label.group(1).split()) > 6:
                    break
                sentence = sentence[label.end() :]
            sentence = sentence.strip().strip("\"'\u201c\u201d").strip()
            if words(sentence):
                sentences.append(sentence)
    return sentences


def answer_text(raw: str) -> str:
    """The first sentence of a model's output (see :func:`answer_sentences`), or ``""``."""
    sentences = answer_sentences(raw)
    return sentences[0] if sentences else ""


def rewrite(toks: list[str], variants: dict[tuple[str, ...], tuple[str, ...]]) -> list[str]:
    """``toks`` with every listed word sequence replaced (longest first, left to right)."""
    starts = _VARIANT_STARTS if variants is NOUN_VARIANTS else {k[0] for k in variants}
    if not any(t in starts for t in toks):
        return toks
    out, i = [], 0
    longest = max((len(k) for k in variants), default=0)
    while i < len(toks):
        for length in range(min(longest, len(toks) - i), 0, -1):
            replacement = variants.get(tuple(toks[i : i + length]))
            if replacement is not None:
                out.extend(replacement)
                i += length
                break
        else:
            out.append(toks[i])
            i += 1
    return out


def without_frame(toks: list[str]) -> list[str]:
    """Tokens without phrases about the recording itself ("in the video", "from these
    frames", "in this egocentric clip"): they name no object of the action ("a seal of clip
    top jar", without a determiner, is an object)."""
    out, i, n = [], 0, len(toks)
    while i < n:
        if toks[i] in _FRAME_PREPOSITIONS and i + 1 < n and toks[i + 1] in DETERMINERS:
            end = next((j for j in range(i + 1, min(n, i + 5)) if toks[j] in FRAME_NOUNS), None)
            if end is not None and not any(t in (",", ":") for t in toks[i + 1 : end]):
                i = end + 1
                continue
        out.append(toks[i])
        i += 1
    return out


FRAME_NOUNS = word_set(
    "video videos clip clips footage frame frames scene scenes image images sequence recording "
    "shot shots view perspective"
)
_FRAME_PREPOSITIONS = word_set("in from of throughout during within across at on")


def normalise(toks: list[str]) -> list[str]:
    """Tokens with everyday variants rewritten to the words class lists tend to use, and
    without phrases about the recording (:func:`without_frame`)."""
    toks = without_frame(toks)
    if any(t in _PHRASE_STARTS for t in toks):
        toks = rewrite(toks, _phrase_variant_forms())
    forms = _verb_variant_forms()
    toks = [forms.get(t, t) for t in toks]
    return rewrite(toks, NOUN_VARIANTS)


_PHRASE_STARTS = word_set("take takes took taking taken have has had having do does did doing done")


@lru_cache(maxsize=1)
def _phrase_variant_forms() -> dict[tuple[str, ...], tuple[str, ...]]:
    """Every inflection of :data:`PHRASE_VARIANTS` -> the same inflection of its verb."""
    import lemminflect

    forms = {}
    for (head, *rest), target in PHRASE_VARIANTS.items():
        for tag in ("VB", "VBZ", "VBD", "VBG", "VBN"):
            verb, *more = target.split()
            for form in lemminflect.getInflection(head, tag=tag):
                said = (lemminflect.getInflection(verb, tag=tag)[0], *more)
                forms[(form, *rest)] = forms[(form, *rest, "of")] = said  # "a sip of tea"
    return forms


@lru_cache(maxsize=1)
def _verb_variant_forms() -> dict[str, str]:
    """Every inflection of :data:`VERB_VARIANTS` -> the same inflection of its replacement."""
    import lemminflect

    forms = {}
    for source, target in VERB_VARIANTS.items():
        for tag in ("VB", "VBZ", "VBD", "VBG", "VBN"):
            for form in lemminflect.getInflection(source, tag=tag):
                forms.setdefault(form, lemminflect.getInflection(target, tag=tag)[0])
    forms.update(sauteing="frying", sauteed="fried")  # lemminflect spells them "sauting"
    return forms


def pronoun_object(region: list[str]) -> bool:
    """Whether an object region starts (after prepositions) with a pronoun: "it", "them"."""
    i = 0
    while i < len(region) and (region[i] in _OBJECT_LEAD):
        i += 1
    return i < len(region) and region[i] in PRONOUNS


def drop_determiners_after_of(region: list[str]) -> list[str]:
    """ "door of the fridge" -> "door of fridge", the way class lists say it."""
    return [
        t
        for k, t in enumerate(region)
        if not (k > 0 and region[k - 1] == "of" and t in DETERMINERS)
    ]


_OBJECT_LEAD = PREPOSITIONS | CONJUNCTIONS | {",", ":"}


# ---------------------------------------------------------------- word forms (lemminflect)


@lru_cache(maxsize=65536)
def noun_lemmas(word: str) -> tuple[str, ...]:
    """Noun lemmas of a word, most likely first (``leaves`` -> leave, leaf); ``(word,)`` if none."""
    import lemminflect

    lemmas = lemminflect.getAllLemmas(word, upos="NOUN").get("NOUN")
    if not lemmas:
        lemmas = lemminflect.getAllLemmasOOV(word, upos="NOUN").get("NOUN")
    return tuple(lemmas) if lemmas else (word,)


def singular(word: str) -> str:
    """The noun lemma of a word (``knives`` -> ``knife``), the word itself when it has none."""
    return noun_lemmas(word)[0]


@lru_cache(maxsize=65536)
def verb_lemmas(word: str) -> tuple[str, ...]:
    """Verb lemmas of a word (``grabbing`` -> ``grab``; ``leaves`` -> ``leave``)."""
    import lemminflect

    lemmas = lemminflect.getAllLemmas(word, upos="VERB").get("VERB")
    if not lemmas:
        lemmas = lemminflect.getAllLemmasOOV(word, upos="VERB").get("VERB", ())
    return tuple(lemma for lemma in lemmas if lemma != word)


@lru_cache(maxsize=65536)
def is_participle(word: str) -> bool:
    """Whether ``word`` is the past participle of a verb (``washed``, ``cut``, ``seen``)."""
    import lemminflect

    for base in (*verb_lemmas(word), word):
        if word in lemminflect.getInflection(base, tag="VBN"):
            return True
    return False


@lru_cache(maxsize=65536)
def is_past(word: str) -> bool:
    """Whether ``word`` is a past-tense verb form (``opened``, ``put``, ``took``)."""
    import lemminflect

    return any(word in lemminflect.getInflection(b, tag="VBD") for b in (*verb_lemmas(word), word))


def is_inflected(word: str) -> bool:
    """Whether ``word`` is an inflected verb form (``-s``, ``-ed``, ``-ing`` or irregular)."""
    return word.endswith("ing") or bool(verb_lemmas(word)) or is_participle(word)
