"""Specialist prediction files: ranked action ids per segment, from three accepted formats.

* ``original``: the LLaVAction release's JSON, keyed by the 0-based data-row index of the split CSV:
  ``{"0": {"predictions": ["v:n", ...], "target": "v:n"}, ...}`` (best first; ``target`` optional
  and, when present, checked against the annotations);
* ``narration_id``: the same values keyed by narration id;
* ``challenge``: an EK100 challenge submission, ``{"version", "challenge", "results": {narration_id:
  {"verb": {"0": score, ...}, "noun": {...}}}}``; verb and noun scores become ranked actions as the
  official evaluation does (top 100 verbs and nouns, softmax of each, outer product, best 100).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from verbnoun.data.ek100 import Segment, action_id, parse_action_id
from verbnoun.errors import PredictionFileError
from verbnoun.fileio import read_json

CHALLENGE_TOP_N = 100


@dataclass
class SpecialistPredictions:
    """Ranked action ids per segment (best first, duplicates removed)."""

    path: str
    format: str
    by_key: dict[str, list[str]] = field(repr=False)
    targets: dict[str, str] = field(default_factory=dict, repr=False)

    def key_of(self, segment: Segment) -> str:
        return str(segment.row) if self.format == "original" else segment.narration_id

    def ranked(self, segment: Segment) -> list[str]:
        """The ranked actions for a segment; checks the file's target against the annotation."""
        key = self.key_of(segment)
        if key not in self.by_key:
            what = f"row {key} ({segment.narration_id})" if self.format == "original" else key
            raise PredictionFileError(self.path, f"no prediction for {what}", key=key)
        self._check_target(key, segment)
        return self.by_key[key]

    def _check_target(self, key: str, segment: Segment, source: str | None = None) -> None:
        """The file's target for ``key`` (when it has one) must be the segment's action."""
        target = self.targets.get(key)
        if target is not None and segment.labelled and target != segment.action_id:
            where = f" in {source}" if source else ""
            raise PredictionFileError(
                self.path,
                f"target {target} differs from the annotated action {segment.action_id} of "
                f"{segment.narration_id}{where}: is this file for another split?",
                key=key,
            )

    def check_fits(self, segments: Sequence[Segment], source: str | None = None) -> None:
        """Refuse a file made for other annotations, naming the first key that does not fit.

        Every key must be a segment of ``segments`` (``source``: the split's file names, for the
        message): a row index beyond the CSV or a narration id outside the split means the file
        was made for another CSV, so none of its keys can be trusted. Every ``target`` given must
        equal the annotated action of its segment. ``source`` defaults to the segments' files.
        """
        source = source or ", ".join(dict.fromkeys(segment.source for segment in segments))
        segment_of = {self.key_of(segment): segment for segment in segments}
        for key in self.by_key:
            segment = segment_of.get(key)
            if segment is None:
                if self.format == "original":
                    what = (
                        f"row {key} does not exist: {source} has {len(segments)} data rows "
                        f"(0..{len(segments) - 1})"
                    )
                else:
                    what = f"narration id {key!r} is not in {source}"
                raise PredictionFileError(
                    self.path, f"{what}; is this file for another split or CSV?", key=key
                )
            self._check_target(key, segment, source)


def load_predictions(
    path: str | Path,
    *,
    num_verbs: int | None = None,
    num_nouns: int | None = None,
    num_actions: int | None = None,
) -> SpecialistPredictions:
    """Load a specialist prediction file in any accepted format, validating every entry.

    Class ids are checked against ``num_verbs`` / ``num_nouns`` when given. With
    ``num_actions`` (a single-label data set), action ids are class ids (``"7"``) below it; the
    challenge format (verb and noun scores) does not apply then.
    """
    path = Path(path)
    data = read_json(path, expect=dict, error=PredictionFileError)
    if not data:
        raise PredictionFileError(path, "expected a non-empty JSON object, found {}")
    if "results" in data:
        if num_actions is not None:
            raise PredictionFileError(
                path, "challenge (verb/noun score) files do not apply to single-label data sets"
            )
        return _from_challenge(path, data, num_verbs, num_nouns)
    digit_keys = [key.isdigit() for key in data]
    if all(digit_keys):
        fmt = "original"
    elif not any(digit_keys):
        fmt = "narration_id"
    else:
        raise PredictionFileError(path, "keys mix row indices and narration ids")
    by_key: dict[str, list[str]] = {}
    targets: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, dict) or not isinstance(value.get("predictions"), list):
            raise PredictionFileError(path, 'expected {"predictions": [...]}', key=key)
        ranked = []
        for item in value["predictions"]:
            _check_action(path, key, item, num_verbs, num_nouns, num_actions)
            if item not in ranked:
                ranked.append(item)
        by_key[key] = ranked
        if value.get("target") is not None:
            _check_action(path, key, value["target"], num_verbs, num_nouns, num_actions)
            targets[key] = value["target"]
    return SpecialistPredictions(str(path), fmt, by_key, targets)


def _check_action(
    path: Path,
    key: str,
    item: object,
    num_verbs: int | None,
    num_nouns: int | None,
    num_actions: int | None = None,
) -> None:
    if not isinstance(item, str):
        raise PredictionFileError(path, f"action id must be a string, got {item!r}", key=key)
    if num_actions is not None:  # single-label: the action class id alone
        if not item.isdigit() or int(item) >= num_actions:
            raise PredictionFileError(
                path, f"not an action class id below {num_actions}: {item!r}", key=key
            )
        return
    try:
        verb, noun = parse_action_id(item)
    except ValueError as error:
        raise PredictionFileError(path, str(error), key=key) from None
    if (num_verbs is not None and verb >= num_verbs) or (
        num_nouns is not None and noun >= num_nouns
    ):
        raise PredictionFileError(
            path,
            f"unknown class id in action {item} ({num_verbs} verbs, {num_nouns} nouns)",
            key=key,
        )


def _scores(path: Path, key: str, part: str, value: object, size: int) -> list[float]:
    if not isinstance(value, dict) or not value:
        raise PredictionFileError(path, f"'{part}' must be an object of class scores", key=key)
    scores = [-math.inf] * size
    for class_key, score in value.items():
        if not str(class_key).isdigit() or int(class_key) >= size:
            raise PredictionFileError(path, f"unknown {part} class id {class_key!r}", key=key)
        if (
            not isinstance(score, int | float)
            or isinstance(score, bool)
            or not math.isfinite(score)
        ):
            raise PredictionFileError(
                path, f"{part} score for {class_key} is not a number", key=key
            )
        scores[int(class_key)] = float(score)
    return scores


def _from_challenge(
    path: Path, data: dict, num_verbs: int | None, num_nouns: int | None
) -> SpecialistPredictions:
    import numpy as np

    if num_verbs is None or num_nouns is None:
        raise PredictionFileError(path, "challenge scores need the number of verb and noun classes")
    results = data["results"]
    if not isinstance(results, dict) or not results:
        raise PredictionFileError(path, "'results' must be a non-empty object")
    by_key = {}
    for key, value in results.items():
        if not isinstance(value, dict) or "verb" not in value or "noun" not in value:
            raise PredictionFileError(path, 'expected {"verb": {...}, "noun": {...}}', key=key)
        verbs = np.array(_scores(path, key, "verb", value["verb"], num_verbs))
        nouns = np.array(_scores(path, key, "noun", value["noun"], num_nouns))
        by_key[key] = challenge_ranked_actions(verbs, nouns)
    return SpecialistPredictions(str(path), "challenge", by_key)


def challenge_ranked_actions(verb_scores, noun_scores, top_n: int = CHALLENGE_TOP_N) -> list[str]:
    """Rank actions from verb and noun scores the way EK100's official evaluation does.

    Take the ``top_n`` verbs and nouns by score, turn each set of scores into probabilities with a
    softmax, rank (verb, noun) pairs by the product of their probabilities, keep the best ``top_n``.
    Ties are broken by verb rank, then noun rank (the official code leaves them unspecified).
    Classes without a score (``-inf``) never enter.
    """
    import numpy as np

    def top(scores):
        order = np.argsort(-scores, kind="stable")
        order = order[np.isfinite(scores[order])][:top_n]
        finite = scores[order]
        probs = np.exp(finite - finite.max())
        return order, probs / probs.sum()

    verbs, verb_probs = top(np.asarray(verb_scores, dtype=np.float64))
    nouns, noun_probs = top(np.asarray(noun_scores, dtype=np.float64))
    product = (verb_probs[:, None] * noun_probs[None, :]).ravel()
    verb_rank, noun_rank = np.divmod(np.arange(product.size), len(nouns))
    order = np.lexsort((noun_rank, verb_rank, -product))[:top_n]
    return [action_id(int(verbs[verb_rank[i]]), int(nouns[noun_rank[i]])) for i in order]
