"""Expression shares corrected for the classifier's known confusion (quantification), with 95 % intervals.

The share of faces whose most probable expression is a class (classify and count, "raw") is biased: a
classifier that sends a quarter of fearful faces to sad makes every group's fear share too low and its sad
share too high, by an amount that depends on the group's true mix. With what the classifier does to faces
of each true class, measured once on labelled validation faces (``ConfusionStats``), the true mix ``q`` can
be estimated back:

- ``acc``, adjusted classify and count: the expected top-1 shares are ``A^T q``, ``A[c, j]`` the share of
  validation faces of class ``c`` decided as ``j``; solve for ``q``.
- ``pacc``, its probabilistic form: the expected mean probability vector is ``M^T q``, ``M[c]`` the mean
  probability vector of validation faces of class ``c``; solve for ``q`` (less noisy: every face gives a
  whole probability vector instead of one vote).
- ``em``, the prior adjustment of Saerens, Latinne and Decaestecker (2002): re-weights each face's
  probabilities by ``q / prior`` and iterates to a fixed point; exact only when the probabilities are
  calibrated for the validation mix.

Solutions are projected onto the simplex (shares within 0-1 that sum to 1). The 95 % interval of each
share is the percentile interval of a bootstrap that resamples the group's faces AND the validation
statistics (confusion rows as multinomial draws, mean probability vectors from their sampling
distribution), so it carries the uncertainty of both. Every function here is numpy only.

The correction assumes that the faces of a campaign look, class by class, like the validation faces: a
campaign's fearful faces are confused as the validation set's fearful faces were. It does not hold for
another kind of photo (lighting, pose, age, crop) than the validation set's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..exceptions import ConfigError, ReportError
from ..labels import EMOTIONS, NUM_CLASSES

__all__ = [
    "BOOTSTRAP_DRAWS",
    "METHODS",
    "ConfusionStats",
    "ShareEstimate",
    "correct_shares",
    "estimate_shares",
    "project_to_simplex",
]

#: The correction methods, and ``raw`` (classify and count, no correction).
METHODS = ("pacc", "acc", "em")
#: Bootstrap draws behind each interval.
BOOTSTRAP_DRAWS = 400
#: Most face-weights held in memory at once while resampling (draws x faces).
_CHUNK_CELLS = 2_000_000
_EM_ITERATIONS = 200
_EM_TOLERANCE = 1e-7


@dataclass(frozen=True)
class ConfusionStats:
    """What a classifier does to faces of each true class, measured on labelled validation faces.

    Attributes:
        counts: validation faces per true class, shape ``(7,)``.
        confusion: top-1 decisions, ``confusion[c, j]`` faces of true class ``c`` decided as ``j``.
        mean_probabilities: ``[c]`` the mean probability vector of the faces of true class ``c``.
        covariance: ``[c]`` the covariance of those probability vectors (for the bootstrap), ``(7, 7, 7)``.
    """

    counts: np.ndarray
    confusion: np.ndarray
    mean_probabilities: np.ndarray
    covariance: np.ndarray

    def __post_init__(self) -> None:
        k = NUM_CLASSES
        shapes = {"counts": (k,), "confusion": (k, k), "mean_probabilities": (k, k), "covariance": (k, k, k)}
        for name, shape in shapes.items():
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != shape or not np.all(np.isfinite(value)):
                raise ReportError(f"ConfusionStats.{name} must be a finite array of shape {shape}. "
                                  f"Received: shape={value.shape}")
            object.__setattr__(self, name, value)
        if np.any(self.counts < 1) or not np.allclose(self.confusion.sum(axis=1), self.counts):
            raise ReportError("ConfusionStats needs at least one validation face per class, and confusion rows "
                              f"that sum to the class counts. Received: counts={self.counts.tolist()}")

    @classmethod
    def from_predictions(cls, y: np.ndarray, probabilities: np.ndarray) -> "ConfusionStats":
        """Measure the statistics from validation labels ``y`` (class indices) and the classifier's
        probabilities ``(n, 7)`` for those faces."""
        y = np.asarray(y, dtype=np.int64)
        p = np.asarray(probabilities, dtype=np.float64)
        if p.ndim != 2 or p.shape != (y.shape[0], NUM_CLASSES):
            raise ReportError(f"probabilities must have shape (len(y), {NUM_CLASSES}). Received: shape={p.shape}")
        counts = np.bincount(y, minlength=NUM_CLASSES).astype(np.float64)
        confusion = np.zeros((NUM_CLASSES, NUM_CLASSES))
        np.add.at(confusion, (y, p.argmax(axis=1)), 1.0)
        means = np.zeros((NUM_CLASSES, NUM_CLASSES))
        covariance = np.zeros((NUM_CLASSES, NUM_CLASSES, NUM_CLASSES))
        for c in range(NUM_CLASSES):
            rows = p[y == c]
            if rows.shape[0]:
                means[c] = rows.mean(axis=0)
            if rows.shape[0] > 1:
                covariance[c] = np.cov(rows, rowvar=False)
        return cls(counts, confusion, means, covariance)

    @property
    def rates(self) -> np.ndarray:
        """``confusion`` as row shares: ``[c, j]`` the share of faces of class ``c`` decided as ``j``."""
        return self.confusion / self.counts[:, None]

    @property
    def prior(self) -> np.ndarray:
        """The validation set's class mix."""
        return self.counts / self.counts.sum()

    def to_dict(self, digits: int = 7) -> dict[str, Any]:
        """JSON-ready: lists in ``EMOTIONS`` order, rounded to ``digits`` decimals."""
        return {
            "counts": [int(v) for v in self.counts],
            "confusion": [[int(v) for v in row] for row in self.confusion],
            "mean_probabilities": np.round(self.mean_probabilities, digits).tolist(),
            "covariance": np.round(self.covariance, digits + 2).tolist(),
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ConfusionStats":
        """The inverse of ``to_dict``.

        Raises:
            ReportError: a field is missing or malformed.
        """
        try:
            return cls(*(np.asarray(values[k], dtype=np.float64)
                         for k in ("counts", "confusion", "mean_probabilities", "covariance")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ReportError(f"Malformed confusion statistics ({type(exc).__name__}: {exc})") from exc

    # ---- resampling the validation set ----------------------------------------------------------------

    def resampled_rates(self, rng: np.random.Generator, draws: int) -> np.ndarray:
        """``draws`` bootstrap replicates of ``rates`` ``(draws, 7, 7)``: each class's validation faces
        resampled with replacement gives a multinomial draw of its confusion row."""
        counts = self.counts.astype(np.int64)
        out = np.empty((draws, NUM_CLASSES, NUM_CLASSES))
        for c in range(NUM_CLASSES):
            out[:, c] = rng.multinomial(counts[c], self.rates[c], size=draws) / counts[c]
        return out

    def resampled_means(self, rng: np.random.Generator, draws: int) -> np.ndarray:
        """``draws`` bootstrap replicates of ``mean_probabilities`` ``(draws, 7, 7)``: the mean of ``n_c``
        resampled faces is normal with the class's covariance / ``n_c`` (central limit theorem), renormalised
        onto the simplex."""
        out = np.empty((draws, NUM_CLASSES, NUM_CLASSES))
        for c in range(NUM_CLASSES):
            cov = self.covariance[c] / self.counts[c]
            # the covariance of probability vectors is singular (they sum to 1): a symmetric square root
            values, vectors = np.linalg.eigh((cov + cov.T) / 2.0)
            root = vectors * np.sqrt(np.clip(values, 0.0, None))
            out[:, c] = self.mean_probabilities[c] + rng.standard_normal((draws, NUM_CLASSES)) @ root.T
        out = np.clip(out, 0.0, None)
        return out / out.sum(axis=2, keepdims=True)


@dataclass(frozen=True)
class ShareEstimate:
    """Corrected shares of one group of faces, with their 95 % intervals.

    Attributes:
        method: ``pacc``, ``acc`` or ``em`` (see the module docstring).
        faces: faces in the group.
        shares: the estimated true share of each class (``EMOTIONS`` order), summing to 1.
        lower, upper: the bounds of each share's 95 % bootstrap percentile interval.
        draws: the bootstrap replicates ``(draws, 7)``, for intervals of derived numbers (valence).
    """

    method: str
    faces: int
    shares: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    draws: np.ndarray

    def as_dicts(self) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
        """``shares`` and ``(lower, upper)`` per class name, as Python floats."""
        return ({e: float(self.shares[i]) for i, e in enumerate(EMOTIONS)},
                {e: (float(self.lower[i]), float(self.upper[i])) for i, e in enumerate(EMOTIONS)})

    def interval_of(self, weights: Sequence[float]) -> tuple[float, float, float]:
        """A linear combination ``w . q`` of the shares (e.g. valence), and its 95 % percentile interval."""
        w = np.asarray(weights, dtype=np.float64)
        values = self.draws @ w
        low, high = np.percentile(values, [2.5, 97.5])
        return float(self.shares @ w), float(low), float(high)


def project_to_simplex(v: np.ndarray) -> np.ndarray:
    """The Euclidean projection of each row of ``v`` onto the probability simplex (Duchi et al. 2008)."""
    v = np.asarray(v, dtype=np.float64)
    flat = v.reshape(-1, v.shape[-1])
    u = -np.sort(-flat, axis=1)
    cumulative = np.cumsum(u, axis=1) - 1.0
    index = np.arange(1, flat.shape[1] + 1)
    rho = (u - cumulative / index > 0).sum(axis=1)
    theta = cumulative[np.arange(flat.shape[0]), rho - 1] / rho
    return np.clip(flat - theta[:, None], 0.0, None).reshape(v.shape)


def _solve(matrix: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """``q`` with ``matrix^T q = observed`` (least squares where singular), projected onto the simplex;
    batched over leading axes of both."""
    a = np.swapaxes(matrix, -1, -2)
    try:
        q = np.linalg.solve(a, observed[..., None])[..., 0]
    except np.linalg.LinAlgError:
        q = (np.linalg.pinv(a) @ observed[..., None])[..., 0]
    return project_to_simplex(q)


def _em(probabilities: np.ndarray, weights: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """The SLD fixed point for faces ``(n, 7)`` weighted by ``weights`` ``(d, n)`` (rows sum to 1), one mix
    per row of weights; ``prior`` ``(d, 7)`` is the mix the probabilities are calibrated for."""
    q = prior.copy()
    for _ in range(_EM_ITERATIONS):
        scaled = probabilities[None, :, :] * (q / prior)[:, None, :]
        posterior = scaled / scaled.sum(axis=2, keepdims=True)
        new = np.einsum("dn,dnk->dk", weights, posterior)
        if np.max(np.abs(new - q)) < _EM_TOLERANCE:
            return new
        q = new
    return q


def _point(method: str, probabilities: np.ndarray, weights: np.ndarray, stats: ConfusionStats,
           rates: np.ndarray, means: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Estimates ``(d, 7)`` for ``d`` weightings of the faces and ``d`` (or one) validation replicates."""
    if method == "pacc":
        return _solve(means, weights @ probabilities)
    if method == "acc":
        decided = np.eye(NUM_CLASSES)[probabilities.argmax(axis=1)]
        return _solve(rates, weights @ decided)
    if method == "em":
        return _em(probabilities, weights, prior)
    raise ConfigError(f"method must be one of {list(METHODS)}. Received: method={method!r}")


def _check(probabilities: Any) -> np.ndarray:
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != NUM_CLASSES or p.shape[0] < 1:
        raise ReportError(f"probabilities must have shape (n >= 1, {NUM_CLASSES}). Received: shape={p.shape}")
    return p


def correct_shares(probabilities: Any, stats: ConfusionStats, *, method: str = "pacc") -> np.ndarray:
    """The corrected share of each class (``EMOTIONS`` order) of a group of faces, without an interval.

    Args:
        probabilities: the classifier's probabilities of the group's faces, ``(n, 7)``.
        stats: the classifier's validation statistics.
        method: ``pacc``, ``acc`` or ``em``.
    """
    p = _check(probabilities)
    weights = np.full((1, p.shape[0]), 1.0 / p.shape[0])
    return _point(method, p, weights, stats, stats.rates[None], stats.mean_probabilities[None],
                  stats.prior[None])[0]


def _face_weights(rng: np.random.Generator, n: int, draws: int) -> np.ndarray:
    """Bootstrap weights ``(draws, n)``: multinomial resampling counts of the ``n`` faces, over ``n``."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=draws) / n


def estimate_shares(
    groups: Sequence[tuple[Any, ConfusionStats]],
    *,
    method: str = "pacc",
    draws: int = BOOTSTRAP_DRAWS,
    seed: Optional[int] = 0,
) -> ShareEstimate:
    """Corrected shares of a group of faces with 95 % intervals from a bootstrap over the faces and over
    the validation statistics.

    A group classified by several models is passed as one ``(probabilities, stats)`` pair per model: each
    part is corrected with its own model's statistics, and the parts are pooled by their face counts.

    Args:
        groups: ``(probabilities (n_m, 7), stats)`` per model; together at least one face.
        method: ``pacc``, ``acc`` or ``em``.
        draws: bootstrap replicates.
        seed: the random seed (the same faces give the same interval); None for fresh randomness.

    Returns:
        The ``ShareEstimate``.

    Raises:
        ConfigError: an unknown method or a draw count below 100.
        ReportError: malformed probabilities or statistics.
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {list(METHODS)}. Received: method={method!r}")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 100:
        raise ConfigError(f"draws must be an integer >= 100. Received: draws={draws!r}")
    parts = [(_check(p), s) for p, s in groups]
    total = sum(p.shape[0] for p, _ in parts)
    if not parts:
        raise ReportError("estimate_shares needs at least one group of faces. Received: groups=[]")
    rng = np.random.default_rng(seed)
    point = np.zeros(NUM_CLASSES)
    replicates = np.zeros((draws, NUM_CLASSES))
    for p, stats in parts:
        n = p.shape[0]
        share = n / total
        point += share * correct_shares(p, stats, method=method)
        rates = stats.resampled_rates(rng, draws) if method == "acc" else None
        means = stats.resampled_means(rng, draws) if method == "pacc" else None
        prior = (rng.multinomial(int(stats.counts.sum()), stats.prior, size=draws) / stats.counts.sum()
                 if method == "em" else None)
        step = max(1, min(draws, _CHUNK_CELLS // max(n, 1) // (NUM_CLASSES if method == "em" else 1)))
        for start in range(0, draws, step):
            stop = min(start + step, draws)
            weights = _face_weights(rng, n, stop - start)
            replicates[start:stop] += share * _point(
                method, p, weights, stats,
                rates[start:stop] if rates is not None else None,
                means[start:stop] if means is not None else None,
                prior[start:stop] if prior is not None else None,
            )
    lower, upper = np.percentile(replicates, [2.5, 97.5], axis=0)
    return ShareEstimate(method=method, faces=int(total), shares=point,
                         lower=np.minimum(lower, point), upper=np.maximum(upper, point), draws=replicates)
