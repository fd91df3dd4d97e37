"""Prior-grid distractors: hard options without a model that give nothing away without looking.

``prior-hard`` draws two distractors sharing the answer's verb and two sharing its noun, so the
answer is always the option that shares the most with the others (a blind reader gets every
question right). ``prior-grid`` (this module, version :data:`VERSION`) still offers confusable
actions, but as a **grid**: the K options are the cells of a 2 x m verb-by-noun grid
(m = ceil(K/2); with K odd one cell of the grid is left out), e.g. for K = 5::

            noun n1    noun n2    noun n3
    verb a  a n1       a n2       a n3
    verb b  b n1       b n2       -

or its transpose (2 nouns x m verbs). Every option shares its verb with the other options of its
row and its noun with those of its column, and every cell is an action of the vocabulary.

**Why no text-only rule beats chance.** The grids form a fixed-size sampling design: a grid G is
drawn with probability proportional to the product of its cells' weights, ``P(G) ~ prod w(c)``,
and a question about the action x is given a grid containing x with probability
``P(G) / (K p(x))``, where p(x) is the share of the split's segments that carry x (the builders
pass :func:`segment_counts` of the split being built). The weights w are fitted (iterative
proportional fitting, once per K, no randomness) so that each action is in the grids with
probability K p(x); then, for every grid, every one of its cells is equally likely to be the
answer. Any rule that sees only the options (how many verbs and nouns each shares, how frequent
each action is anywhere, where it sits in the grid) is at chance, up to how closely the fit
converged (``inclusion_error`` in the manifest: the total variation between the actions'
inclusion shares and p). Actions that never answer a question of the split are never offered.
``verbnoun mqa audit`` and ``benchmarks/bench_audit.py`` measure what is left. Distractor *texts* are
narrations of their class drawn by frequency from the split's own segments
(:func:`split_vocabulary`), the law the answers' texts follow.

**Free sets.** Where frequencies are very uneven (a dominant action must be offered in K p(x) of
all questions, which its rarer grid-mates cannot follow), grids alone cannot reach that balance.
The design then also holds *free sets*, K actions with nothing required in common, drawn the same
way (product of the same weights); they enter only when grids alone leave an error above
:data:`GRID_TOLERANCE`, with the smallest weight of :data:`FREE_LADDER` that brings it under.
The manifest records their share: at K = 5, none on EK100's validation split, 16% on its train
split, 17-65% on the small synthetic kitchen's splits (``bench_audit.py`` prints them).

**Fallbacks** (outside the design, for answers it cannot hold: an action in no grid and no free
set, e.g. not in the vocabulary): a *star*, K-1 other actions with its verb (or its noun) drawn
by weight (source ``prior-grid:star``); else K-1 actions by weight (``prior-grid:frequency``).
Single-label data sets (no verb or noun) use free sets only, so the frequency prior is at chance
there too.

Distractor sources say how a distractor relates to the answer: ``prior-grid:verb`` (same verb),
``prior-grid:noun`` (same noun), ``prior-grid:other`` (the grid's other verb and another noun),
``prior-grid:free`` and the fallbacks above. Randomness comes only from the question's
generator, so a build is deterministic in the seed.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from verbnoun.bench.distractors import Distractor
from verbnoun.data.annotations import ActionVocabulary
from verbnoun.data.ek100 import Segment, parse_action_id, single_action_class
from verbnoun.errors import VerbnounError

VERSION = 1
MAX_ITERATIONS = 60
TOLERANCE = 1e-3  # total variation between the actions' inclusion shares and their frequencies
MIN_STEP = 1 / 16
GRID_TOLERANCE = 0.03  # the error up to which grids alone are kept
FREE_LADDER = (0.0, 1e-4, 1e-3, 1e-2)  # free sets' starting share of the design, tried in turn
NAME = "prior-grid"


def split_vocabulary(segments: Sequence[Segment]) -> ActionVocabulary:
    """The actions and narrations of the segments a benchmark is built from, with segment counts:
    prior-grid draws its distractors' texts from it, so that they follow the law the answers'
    texts follow (each answer's text is its own segment's narration). Texts from the whole
    vocabulary would let a reader that knows other splits' narrations tell answers apart."""
    counts: dict[str, Counter] = {}
    for segment in segments:
        counts.setdefault(segment.action_id, Counter())[segment.narration or ""] += 1
    return ActionVocabulary.from_counts(counts, {"source": "the segments questions are built for"})


def segment_counts(dataset, splits: Sequence[str]) -> Counter:
    """How many labelled segments of ``splits`` carry each action id: the frequencies the grid
    design is fitted to (the answers of a benchmark follow them)."""
    counts: Counter = Counter()
    for split in splits:
        counts.update(s.action_id for s in dataset.segments(split, require_labels=True))
    return counts


# ----------------------------------------------------------------------------- sampling helpers


def _suffix_esp(weights: np.ndarray, r: int) -> np.ndarray:
    """``T[j, i]`` = the j-th elementary symmetric polynomial of ``weights[i:]`` (j = 0..r)."""
    n = len(weights)
    table = np.zeros((r + 1, n + 1))
    table[0] = 1.0
    for j in range(1, r + 1):
        table[j, :n] = np.cumsum((weights * table[j - 1, 1:])[::-1])[::-1]
    return table


def _esp(weights: np.ndarray, r: int) -> np.ndarray:
    """e_0..e_r of ``weights``."""
    return _suffix_esp(weights, r)[:, 0]


def _leave_one_out(weights: np.ndarray, r: int) -> np.ndarray:
    """e_r of ``weights`` without item j, for every j."""
    full = _esp(weights, r)
    out = np.ones_like(weights)
    for j in range(1, r + 1):
        out = _clean(full[j] - weights * out, full[j])
    return out


def _clean(values: np.ndarray, scale) -> np.ndarray:
    """A difference of sums that is zero in exact arithmetic comes out as a rounding residue:
    values below 1e-9 of the sum they were taken from are zero."""
    return np.where(values > 1e-9 * scale, values, 0.0)


def _draw(weights: np.ndarray, rng: random.Random) -> int:
    """An index drawn in proportion to ``weights`` (non-negative, not all zero)."""
    cumulative = np.cumsum(weights)
    index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    index = min(index, len(weights) - 1)
    while weights[index] <= 0:  # rounding at the very top: the last positive weight
        index -= 1
    return index


def sample_subset(weights: np.ndarray, r: int, rng: random.Random) -> list[int]:
    """``r`` distinct indices, the set drawn with probability proportional to the product of its
    weights (conditional Poisson sampling), by the first-selected-index method."""
    if r == 0:
        return []
    table = _suffix_esp(weights, r)
    if table[r, 0] <= 0:
        raise ValueError(f"fewer than {r} items with a positive weight")
    picks: list[int] = []
    start = 0
    for remaining in range(r, 0, -1):
        tail = weights[start:] * table[remaining - 1, start + 1 :]
        index = start + _draw(tail, rng)
        picks.append(index)
        start = index + 1
    return picks


# ----------------------------------------------------------------------------- grid design


@dataclass
class _Orientation:
    """Grids with 2 rows in one class kind (verbs, or nouns when ``transposed``) and m columns
    in the other. ``matrix[row, column]`` is the weight of the action there (0: no action)."""

    transposed: bool
    matrix: np.ndarray
    cell_action: np.ndarray  # (rows, columns) -> action index, -1 where none
    triples: tuple[np.ndarray, np.ndarray, np.ndarray] = field(default=None)  # type: ignore
    by_cell: dict[tuple[int, int], slice] = field(default_factory=dict)
    esp: np.ndarray = field(default=None)  # type: ignore  # (k+1, R, R)
    role_mass: dict[str, np.ndarray] = field(default_factory=dict)  # per triple

    @classmethod
    def of(cls, rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int, transposed: bool):
        cell_action = np.full((n_rows, n_cols), -1, dtype=np.int64)
        cell_action[rows, cols] = np.arange(len(rows))
        this = cls(transposed, np.zeros((n_rows, n_cols)), cell_action)
        # every (a, b, n) with a != b and both (a, n) and (b, n) actions, sorted by (a, n)
        ta, tb, tn = [], [], []
        for n in range(n_cols):
            members = np.nonzero(cell_action[:, n] >= 0)[0]
            if len(members) < 2:
                continue
            a = np.repeat(members, len(members))
            b = np.tile(members, len(members))
            keep = a != b
            ta.append(a[keep])
            tb.append(b[keep])
            tn.append(np.full(int(keep.sum()), n))
        if ta:
            a, b, n = np.concatenate(ta), np.concatenate(tb), np.concatenate(tn)
        else:
            a = b = n = np.zeros(0, dtype=np.int64)
        order = np.lexsort((b, n, a))
        this.triples = (a[order], b[order], n[order])
        a, n = this.triples[0], this.triples[2]
        if len(a):
            change = np.nonzero((np.diff(a) != 0) | (np.diff(n) != 0))[0] + 1
            starts = np.concatenate([[0], change])
            ends = np.concatenate([change, [len(a)]])
            this.by_cell = {(int(a[s]), int(n[s])): slice(int(s), int(e))
                            for s, e in zip(starts, ends, strict=True)}  # fmt: skip
        return this

    def inclusion_mass(self, weights: np.ndarray, k: int, odd: bool) -> np.ndarray:
        """For every action x: the summed product of the other cells' weights over the grids of
        this orientation that contain x (Z_x), and the per-triple role masses kept for sampling."""
        matrix = self.matrix
        matrix[:] = 0.0
        valid = self.cell_action >= 0
        matrix[valid] = weights[self.cell_action[valid]]
        n_rows = matrix.shape[0]
        a, b, n = self.triples
        s = matrix[a, n] * matrix[b, n]
        pair = a * n_rows + b
        # e_r(a, b) of the shared-column products, r = 0..k (Newton's identities on power sums)
        power = [np.bincount(pair, s**j, minlength=n_rows * n_rows) for j in range(1, k + 1)]
        esp = [np.ones(n_rows * n_rows)]
        for r in range(1, k + 1):
            total = sum((-1) ** (j - 1) * esp[r - j] * power[j - 1] for j in range(1, r + 1))
            esp.append(_clean(total / r, power[0] ** r))
        self.esp = np.stack(esp).reshape(k + 1, n_rows, n_rows)
        # e_r of the shared products without column n, at every triple
        loo = [np.ones(len(a))]
        for r in range(1, k + 1):
            loo.append(_clean(esp[r][pair] - s * loo[r - 1], esp[r][pair]))
        mass = np.zeros(len(weights))
        cells = self.cell_action[a, n]
        roles: dict[str, np.ndarray] = {}
        if odd:
            # A: x alone in its column, k shared columns, the hole at (b, x's column)
            dense = self.esp[k].copy()
            np.fill_diagonal(dense, 0.0)
            cell_rows, cell_cols = np.nonzero(valid)
            mass[self.cell_action[cell_rows, cell_cols]] += dense.sum(axis=1)[cell_rows]
            mass -= np.bincount(cells, esp[k][pair] - loo[k], minlength=len(weights))
            roles["A"] = loo[k]
            # B / C: x and (b, its column), k - 1 shared columns, and a lone cell in x's row (B)
            # or in b's row (C) whose column has the hole
            row_sum = matrix.sum(axis=1)
            for role, lone_row in (("B", a), ("C", b)):
                here = matrix[lone_row, n]  # the lone row's weight in x's column
                g = row_sum[lone_row] - here
                for r in range(1, k):
                    weighted = row_sum[lone_row] * esp[r][pair] - np.bincount(
                        pair, matrix[lone_row, n] * (esp[r][pair] - loo[r]),
                        minlength=n_rows * n_rows,
                    )[pair]  # fmt: skip
                    g = _clean(weighted - here * loo[r] - s * g, weighted)
                roles[role] = matrix[b, n] * g
                mass += np.bincount(cells, roles[role], minlength=len(weights))
        else:
            # D: a full grid, x and (b, its column) and k shared columns
            roles["D"] = matrix[b, n] * loo[k]
            mass += np.bincount(cells, roles["D"], minlength=len(weights))
        self.role_mass = roles
        return mass


@dataclass
class GridDesign:
    """The fitted design for K options: weights and the two orientations' tables."""

    k: int
    weights: np.ndarray
    covered: np.ndarray
    orientations: tuple[_Orientation, ...]
    iterations: int
    max_error: float
    free: float = 0.0  # the weight of a free set (K actions sharing nothing required)
    free_share: float = 0.0  # the share of questions given a free set


def fit_weights(target, covered, mass_of, weights) -> tuple[np.ndarray, int, float]:
    """Weights w whose design includes each covered action with probability proportional to
    ``target``, as closely as the grids allow: iterative proportional fitting,
    ``w <- w (target / inclusion) ** step``, the step halved whenever the error grows (a target
    the grids cannot reach makes it oscillate). The error is the total variation distance
    between the actions' inclusion shares and the target's. Returns the best weights seen, the
    iterations run and that error."""
    weights = weights.copy()
    goal = target[covered] / target[covered].sum()
    best, best_error, previous, step = weights.copy(), np.inf, np.inf, 1.0
    iterations = 0
    for iterations in range(1, MAX_ITERATIONS + 1):
        share = weights[covered] * mass_of(weights)[covered]
        if not covered.any() or share.sum() <= 0:
            return weights, iterations, 0.0
        share /= share.sum()
        error = 0.5 * float(np.abs(share - goal).sum())
        if error < best_error:
            best, best_error = weights.copy(), error
        if error < TOLERANCE:
            break
        if error > previous:
            step /= 2
            if step < MIN_STEP:
                break
        previous = error
        weights[covered] *= np.clip(share / goal, 1e-6, 1e6) ** -step
        weights /= weights[covered].mean()
    return best, iterations, best_error


class PriorGridDistractors:
    """Hard distractors as a balanced verb x noun grid (see the module docstring)."""

    name = NAME
    version = VERSION

    def __init__(
        self,
        vocabulary: ActionVocabulary,
        counts: Mapping[str, int] | None = None,
        texts: ActionVocabulary | None = None,
    ) -> None:
        """``counts``: how many labelled segments carry each action (:func:`segment_counts`);
        by default the vocabulary's frequencies (which count distinct narrations, not segments,
        where EK100's train CSV is rebuilt from the retrieval file). ``texts``: where the
        builder should draw distractor texts from (:func:`split_vocabulary`), kept as
        ``self.texts``."""
        self.vocabulary = vocabulary
        self.texts = texts
        self.actions = list(vocabulary.actions)
        self.index = {a: i for i, a in enumerate(self.actions)}
        self.frequency_source = "vocabulary" if counts is None else "segments"
        frequency = [vocabulary.frequency(a) if counts is None else counts.get(a, 0)
                     for a in self.actions]  # fmt: skip
        self.frequency = np.asarray(frequency, dtype=float)
        pairs = []
        self.single_label = True
        for action in self.actions:
            if single_action_class(action) is not None:
                pairs.append((-1, -1))
            else:
                self.single_label = False
                pairs.append(parse_action_id(action))
        self.verb_of = np.asarray([p[0] for p in pairs])
        self.noun_of = np.asarray([p[1] for p in pairs])
        self._designs: dict[int, GridDesign] = {}
        self._mass_cache: dict[tuple[int, int], tuple] = {}

    # ---------------------------------------------------------------- fitting

    def _orientations(self) -> tuple[_Orientation, ...]:
        grid = np.nonzero((self.verb_of >= 0) & (self.frequency > 0))[0]
        verbs = np.unique(self.verb_of[grid])
        nouns = np.unique(self.noun_of[grid])
        verb_row = {v: i for i, v in enumerate(verbs)}
        noun_col = {n: i for i, n in enumerate(nouns)}
        rows = np.full(len(self.actions), -1)
        cols = np.full(len(self.actions), -1)
        for x in grid:
            rows[x] = verb_row[self.verb_of[x]]
            cols[x] = noun_col[self.noun_of[x]]
        self._class_of = (verbs, nouns)
        self._position = (rows, cols)
        full = _Orientation.of
        by_verb = full(rows[grid], cols[grid], len(verbs), len(nouns), False)
        by_noun = full(cols[grid], rows[grid], len(nouns), len(verbs), True)
        # the orientations index actions by their position in ``grid``
        self._grid = grid
        return by_verb, by_noun

    def design(self, k: int) -> GridDesign:
        """The design for ``k`` options, fitted on first use."""
        if k not in self._designs:
            self._designs[k] = self._fit(k)
        return self._designs[k]

    def _fit(self, k: int) -> GridDesign:
        if self.single_label:
            return self._fit_free(k)
        orientations = self._orientations()
        columns = -(-k // 2) - 1  # shared columns besides the answer's (m - 1)
        odd = k % 2 == 1
        target = self.frequency[self._grid]
        weights = target / target.mean()

        def grid_mass(w: np.ndarray) -> np.ndarray:
            return sum(o.inclusion_mass(w, columns, odd) for o in orientations)

        start = weights
        grids = grid_mass(start)
        free_mass = _leave_one_out(start, k - 1)
        fits = []
        for share in FREE_LADDER:  # the first that balances the grids wins
            free = share / (1 - share) * (start @ grids) / (start @ free_mass) if share else 0.0

            def inclusion(w: np.ndarray, free: float = free) -> np.ndarray:
                mass = grid_mass(w)
                return mass + free * _leave_one_out(w, k - 1) if free else mass

            covered = inclusion(start) > 0
            weights, iterations, error = fit_weights(target, covered, inclusion, start)
            fits.append((error, free, covered, weights, iterations))
            if error <= GRID_TOLERANCE:
                break
        error, free, covered, weights, iterations = min(fits, key=lambda f: f[0])
        grids = grid_mass(weights)  # leaves the orientations' tables at the fitted weights
        free_share = 0.0
        if free:
            free_part = free * _leave_one_out(weights, k - 1)
            free_share = float((weights @ free_part) / (weights @ (grids + free_part)))
        full_weights = np.zeros(len(self.actions))
        full_weights[self._grid] = weights
        full_covered = np.zeros(len(self.actions), bool)
        full_covered[self._grid] = covered
        # actions outside every grid keep their frequency as weight (stars and fallbacks)
        scale = np.median(weights[covered] / target[covered]) if covered.any() else 1.0
        outside = (self.frequency > 0) & ~full_covered
        full_weights[outside] = self.frequency[outside] * scale
        return GridDesign(k, full_weights, full_covered, orientations, iterations, error, free,
                          free_share)  # fmt: skip

    def _fit_free(self, k: int) -> GridDesign:
        """Single-label: sets of K actions, P(set) ~ product of weights; fitted inclusion."""
        target = self.frequency.copy()
        covered = target > 0
        weights = np.where(covered, target / max(target.mean(), 1e-300), 0.0)
        weights, iterations, error = fit_weights(
            target, covered, lambda w: _leave_one_out(w, k - 1), weights
        )
        return GridDesign(k, weights, covered, (), iterations, error)

    def describe(self, k: int) -> dict:
        """What a manifest records about the rule and its fit for ``k`` options."""
        design = self.design(k)
        return {
            "strategy": NAME,
            "version": VERSION,
            "rule": "options are the cells of a 2 x ceil(K/2) verb-by-noun grid (or its "
            "transpose); grids drawn in proportion to the product of fitted cell weights, so "
            "that every cell is equally likely to be the answer",
            "texts": "narrations of the split's segments"
            if self.texts is not None
            else "narrations of the vocabulary",
            "fit": {
                "frequencies": self.frequency_source,
                "iterations": design.iterations,
                "inclusion_error": round(design.max_error, 6),
                "free_set_share": round(design.free_share, 4),
                "actions_covered": int(design.covered.sum()),
                "actions": len(self.actions),
            },
        }

    # ---------------------------------------------------------------- choosing

    def choose(self, segment: Segment, k: int, rng: random.Random) -> list[Distractor]:
        if len(self.actions) - (segment.action_id in self.index) < k - 1:
            raise VerbnounError(f"the vocabulary has too few actions for {k} options")
        design = self.design(k)
        truth = self.index.get(segment.action_id)
        if self.single_label or truth is None or not design.covered[truth]:
            return self._fallback(truth, design, k, rng)
        return self._grid_cells(truth, design, k, rng)

    def _masses(self, truth: int, design: GridDesign) -> tuple:
        """Every completion of a grid around ``truth``: (orientation, role, partner row, mass)."""
        key = (design.k, truth)
        if key in self._mass_cache:
            return self._mass_cache[key]
        rows, cols = self._position
        entries: list[tuple[int, str, np.ndarray, np.ndarray]] = []
        for o_index, o in enumerate(design.orientations):
            row, col = (cols[truth], rows[truth]) if o.transposed else (rows[truth], cols[truth])
            here = o.by_cell.get((int(row), int(col)), slice(0, 0))
            partners = o.triples[1][here]
            for role, values in o.role_mass.items():
                if role == "A":  # every other row: e_k of the shared columns, x's own left out
                    dense = o.esp[-1][row].copy()
                    dense[row] = 0.0
                    dense[partners] = values[here]
                    entries.append((o_index, role, np.arange(len(dense)), dense))
                else:
                    entries.append((o_index, role, partners, values[here]))
        if design.free:
            pool = design.weights[self._grid].copy()
            position = int(np.searchsorted(self._grid, truth))
            loo = _leave_one_out(pool, design.k - 1)[position]
            entries.append((-1, "free", np.asarray([position]), np.asarray([design.free * loo])))
        self._mass_cache[key] = tuple(entries)
        return self._mass_cache[key]

    def _grid_cells(
        self, truth: int, design: GridDesign, k: int, rng: random.Random
    ) -> list[Distractor]:
        entries = list(self._masses(truth, design))
        while True:
            totals = np.asarray([float(m.sum()) for _, _, _, m in entries])
            if totals.sum() <= 0:  # only rounding residues: no grid after all
                return self._fallback(truth, design, k, rng)
            pick = _draw(totals, rng)
            o_index, role, partners, masses = entries[pick]
            if role == "free":
                pool = design.weights[self._grid].copy()
                pool[partners[0]] = 0.0
                picked = sample_subset(pool, k - 1, rng)
                return [Distractor(self.actions[self._grid[i]], f"{NAME}:free") for i in picked]
            o = design.orientations[o_index]
            index = _draw(masses, rng)
            cells = self._complete(truth, o, role, int(partners[index]), k, rng)
            if cells is not None:
                break
            # a completion whose mass was a rounding residue: never draw it again
            masses = masses.copy()
            masses[index] = 0.0
            entries[pick] = (o_index, role, partners, masses)
        rows, cols = self._position
        a, c1 = (cols[truth], rows[truth]) if o.transposed else (rows[truth], cols[truth])
        result = []
        for row, col in cells:
            x = self._grid[o.cell_action[row, col]]
            same_row, same_col = row == a, col == c1
            verb_shared, noun_shared = (
                (same_col, same_row) if o.transposed else (same_row, same_col)
            )
            source = "verb" if verb_shared else "noun" if noun_shared else "other"
            result.append(Distractor(self.actions[x], f"{NAME}:{source}"))
        if len(result) != k - 1:
            raise AssertionError(f"grid of {len(result) + 1} cells for {k} options")
        return result

    def _complete(
        self, truth: int, o: _Orientation, role: str, b: int, k: int, rng: random.Random
    ) -> list[tuple[int, int]] | None:
        """The other cells of a grid around ``truth`` in role ``role`` with partner row ``b``,
        drawn in proportion to the product of their weights (``None``: no such grid)."""
        rows, cols = self._position
        a, c1 = (cols[truth], rows[truth]) if o.transposed else (rows[truth], cols[truth])
        shared = o.matrix[a] * o.matrix[b]
        shared[c1] = 0.0
        columns = -(-k // 2) - 1
        cells: list[tuple[int, int]] = []
        if role in ("B", "C", "D"):
            cells.append((b, c1))
        wanted = columns
        if role in ("B", "C"):
            lone_row = a if role == "B" else b
            lone = o.matrix[lone_row] * _leave_one_out(shared, columns - 1)
            lone[c1] = 0.0
            if lone.sum() <= 0:
                return None
            j = _draw(lone, rng)
            cells.append((lone_row, j))
            shared[j] = 0.0
            wanted = columns - 1
        if np.count_nonzero(shared) < wanted:
            return None
        for n in sample_subset(shared, wanted, rng):
            cells += [(a, n), (b, n)]
        return cells

    def _fallback(
        self, truth: int | None, design: GridDesign, k: int, rng: random.Random
    ) -> list[Distractor]:
        """A star around the answer (same verb or same noun), else K-1 actions by weight."""
        weights = design.weights.copy()
        if truth is not None:
            weights[truth] = 0.0
        if not self.single_label and truth is not None:
            stars = []
            for same in (self.verb_of == self.verb_of[truth], self.noun_of == self.noun_of[truth]):
                star = np.where(same, weights, 0.0)
                stars.append((star, float(_esp(star, k - 1)[k - 1])))
            masses = np.asarray([m for _, m in stars])
            if masses.sum() > 0:
                star = stars[_draw(masses, rng)][0]
                return [Distractor(self.actions[i], f"{NAME}:star")
                        for i in sample_subset(star, k - 1, rng)]  # fmt: skip
        if np.count_nonzero(weights) < k - 1:
            weights = np.where(weights > 0, weights, 1e-9)
            if truth is not None:
                weights[truth] = 0.0
        source = "free" if self.single_label else "frequency"  # single-label: the design
        return [Distractor(self.actions[i], f"{NAME}:{source}")
                for i in sample_subset(weights, k - 1, rng)]  # fmt: skip
