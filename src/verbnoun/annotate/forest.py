"""Window features and a random forest kept as plain arrays: the classifier of ``annotate adapt``.

:func:`window_features` turns a window's frames (``T`` frames of ``S x S`` px, RGB uint8, as
``annotate`` samples them) into a fixed vector that does not depend on where in the picture the
action happens, except where it says so:

* **motion**: the mean absolute difference between consecutive grey frames (its mean, spread and
  peak, log-scaled), its rhythm (the normalised magnitude spectrum of that series: a fast
  side-to-side movement and a steady one differ there), how much of the motion is net
  displacement (first to last frame against the path), the share of pixels that move, and its
  direction: one translation per pair of frames fitted by least squares to the pixels that
  change (Lucas-Kanade over the whole frame), its mean (which way things move), spread (back
  and forth) and speed;
* **appearance**: histograms of the mean grey frame, of each colour channel, of the per-pixel
  change over the window and of the gradient magnitude (posture, size and colour of what is
  seen);
* **layout**: the mean frame and the motion map pooled to a 4 x 4 grid (where things are and
  move; a fixed camera makes place meaningful).

:class:`Forest` fits scikit-learn's :class:`~sklearn.ensemble.RandomForestClassifier`
(class-balanced, deterministic in the seed) and keeps each tree's public arrays
(``tree_.children_left`` ... ``tree_.value``) concatenated; :meth:`Forest.log_proba` walks all
trees at once in numpy and equals scikit-learn's ``predict_proba``. So a model folder holds
numbers only (safetensors), never a pickle.
"""

from __future__ import annotations

import numpy as np

FEATURES_VERSION = 2
GRID = 4
MOVING = 0.04  # a grey change above this (0-1 scale) counts as a moving pixel
CHANGING = 0.02  # pixels changing more than this take part in the translation fit


def _pool(images: np.ndarray, k: int) -> np.ndarray:
    """``(..., S, S)`` -> ``(..., k, k)`` block means (S cropped to a multiple of k)."""
    size = images.shape[-1] - images.shape[-1] % k
    x = images[..., :size, :size]
    step = size // k
    return x.reshape(*x.shape[:-2], k, step, k, step).mean(axis=(-1, -3))


def _histogram(values: np.ndarray, bins: int, high: float) -> np.ndarray:
    """Per row of ``(N, ...)``: the share of values in each of ``bins`` equal bins of
    ``[0, high]`` (values above go to the last bin)."""
    flat = values.reshape(len(values), -1)
    index = np.clip((flat / high * bins).astype(np.int64), 0, bins - 1)
    out = np.zeros((len(values), bins), dtype=np.float32)
    for b in range(bins):
        out[:, b] = (index == b).mean(axis=1)
    return out


def translations(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N, T, S, S)`` grey frames -> ``(u, v)``, each ``(N, T - 1)``: the one translation (px
    per frame) that best explains each pair's change under brightness constancy, least squares
    over the pixels that change."""
    gy, gx = np.gradient(grey, axis=(2, 3))
    gt = grey[:, 1:] - grey[:, :-1]
    gx, gy = (gx[:, 1:] + gx[:, :-1]) / 2, (gy[:, 1:] + gy[:, :-1]) / 2
    w = (np.abs(gt) > CHANGING).astype(np.float32)
    a11, a12, a22 = ((w * a * b).sum(axis=(2, 3)) for a, b in ((gx, gx), (gx, gy), (gy, gy)))
    b1, b2 = -(w * gx * gt).sum(axis=(2, 3)), -(w * gy * gt).sum(axis=(2, 3))
    det = a11 * a22 - a12**2 + 1e-6
    return (a22 * b1 - a12 * b2) / det, (a11 * b2 - a12 * b1) / det


def window_features(clips: np.ndarray) -> np.ndarray:
    """``(N, T, S, S, 3)`` uint8 -> ``(N, F)`` float32 (``T >= 2``, ``S >= 4``)."""
    clips = np.asarray(clips)
    n, frames = clips.shape[:2]
    if frames < 2:
        raise ValueError("window features need at least 2 frames per window")
    rgb = clips.astype(np.float32) / 255.0
    grey = rgb.mean(axis=-1)
    diff = np.abs(grey[:, 1:] - grey[:, :-1])
    energy = diff.mean(axis=(2, 3))
    centred = energy - energy.mean(axis=1, keepdims=True)
    spectrum = np.abs(np.fft.rfft(centred, axis=1))
    spectrum /= spectrum.sum(axis=1, keepdims=True) + 1e-6
    net = np.abs(grey[:, -1] - grey[:, 0]).mean(axis=(1, 2))
    path = energy.sum(axis=1)
    moving = (diff > MOVING).mean(axis=(2, 3))
    mean = grey.mean(axis=1)
    change = grey.std(axis=1)
    gy, gx = np.gradient(mean, axis=(1, 2))
    gradient = np.sqrt(gx**2 + gy**2)
    colour = rgb.mean(axis=1)
    u, v = translations(grey)
    speed = np.hypot(u, v).mean(axis=1)
    direction = np.stack([u.mean(axis=1), v.mean(axis=1), u.std(axis=1), v.std(axis=1), speed], 1)
    parts = [
        np.log(energy.mean(axis=1) + 1e-4)[:, None],
        np.log(energy.std(axis=1) + 1e-4)[:, None],
        np.log(energy.max(axis=1) + 1e-4)[:, None],
        spectrum,
        (net / (path + 1e-6))[:, None],
        np.log(net + 1e-4)[:, None],
        moving.mean(axis=1)[:, None],
        moving.max(axis=1)[:, None],
        direction,
        _histogram(mean, 16, 1.0),
        *(_histogram(colour[..., c], 8, 1.0) for c in range(3)),
        _histogram(change, 8, 0.2),
        _histogram(gradient, 8, 0.3),
        _pool(mean, GRID).reshape(n, -1),
        _pool(diff.mean(axis=1), GRID).reshape(n, -1),
    ]
    return np.concatenate(parts, axis=1).astype(np.float32)


class Forest:
    """A fitted random forest as concatenated node arrays (``tree_start`` marks each tree's
    root); :meth:`log_proba` gives scikit-learn's ``predict_proba``, as logs."""

    ARRAYS = ("left", "right", "feature", "threshold", "value", "tree_start")

    def __init__(self, arrays: dict[str, np.ndarray], classes: int) -> None:
        missing = [k for k in self.ARRAYS if k not in arrays]
        if missing:
            raise ValueError(f"forest arrays missing: {', '.join(missing)}")
        self.left = np.asarray(arrays["left"], dtype=np.int64)
        self.right = np.asarray(arrays["right"], dtype=np.int64)
        self.feature = np.asarray(arrays["feature"], dtype=np.int64)
        self.threshold = np.asarray(arrays["threshold"], dtype=np.float64)
        self.value = np.asarray(arrays["value"], dtype=np.float64)
        self.tree_start = np.asarray(arrays["tree_start"], dtype=np.int64)
        nodes = len(self.left)
        if not (len(self.right) == len(self.feature) == len(self.threshold) == nodes
                and self.value.shape == (nodes, classes)):  # fmt: skip
            raise ValueError("forest arrays of different lengths")
        inner = self.left >= 0
        if (self.left[inner] >= nodes).any() or (self.right[inner] >= nodes).any():
            raise ValueError("forest arrays point outside the forest")
        self.classes = classes

    @classmethod
    def fit(
        cls, features: np.ndarray, targets: np.ndarray, classes: int, *, trees: int = 200,
        min_leaf: int = 2, seed: int = 0,
    ) -> Forest:  # fmt: skip
        """Fit scikit-learn's random forest (class-balanced) and keep its arrays; classes that
        no target has get probability 0."""
        from sklearn.ensemble import RandomForestClassifier

        model = RandomForestClassifier(
            n_estimators=trees, min_samples_leaf=min_leaf, class_weight="balanced",
            random_state=seed, n_jobs=1,
        )  # fmt: skip
        model.fit(features, targets)
        return cls(cls.arrays_of(model, classes), classes)

    @staticmethod
    def arrays_of(model, classes: int) -> dict[str, np.ndarray]:
        """The concatenated public tree arrays of a fitted ``RandomForestClassifier``."""
        known = [int(c) for c in model.classes_]
        parts: dict[str, list] = {k: [] for k in Forest.ARRAYS}
        offset = 0
        for estimator in model.estimators_:
            tree = estimator.tree_
            inner = tree.children_left >= 0
            parts["left"].append(np.where(inner, tree.children_left + offset, -1))
            parts["right"].append(np.where(inner, tree.children_right + offset, -1))
            parts["feature"].append(np.where(inner, tree.feature, -1))
            parts["threshold"].append(tree.threshold)
            counts = tree.value[:, 0, :]
            value = np.zeros((tree.node_count, classes))
            value[:, known] = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1e-12)
            parts["value"].append(value)
            parts["tree_start"].append(np.array([offset]))
            offset += tree.node_count
        return {
            "left": np.concatenate(parts["left"]).astype(np.int32),
            "right": np.concatenate(parts["right"]).astype(np.int32),
            "feature": np.concatenate(parts["feature"]).astype(np.int32),
            "threshold": np.concatenate(parts["threshold"]).astype(np.float64),
            "value": np.concatenate(parts["value"]).astype(np.float32),
            "tree_start": np.concatenate(parts["tree_start"]).astype(np.int32),
        }

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "left": self.left.astype(np.int32),
            "right": self.right.astype(np.int32),
            "feature": self.feature.astype(np.int32),
            "threshold": self.threshold,
            "value": self.value.astype(np.float32),
            "tree_start": self.tree_start.astype(np.int32),
        }

    def proba(self, features: np.ndarray) -> np.ndarray:
        """``(N, classes)`` class probabilities: the mean of the trees' leaf distributions."""
        x = np.asarray(features, dtype=np.float32).astype(np.float64)
        if x.ndim != 2 or (len(self.feature) and x.shape[1] <= self.feature.max()):
            raise ValueError(f"features of shape {x.shape} do not fit this forest")
        node = np.broadcast_to(self.tree_start, (len(x), len(self.tree_start))).copy()
        rows = np.arange(len(x))[:, None]
        while True:
            inner = self.left[node] >= 0
            if not inner.any():
                break
            feature = np.where(inner, self.feature[node], 0)
            go_left = x[rows, feature] <= self.threshold[node]
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)
        return self.value[node].mean(axis=1)

    def log_proba(self, features: np.ndarray, floor: float = 1e-4) -> np.ndarray:
        """Log-probabilities (a probability of 0 becomes ``floor``, then renormalised)."""
        p = np.maximum(self.proba(features), floor)
        return np.log(p / p.sum(axis=1, keepdims=True))
