"""Temperature scaling: one number that makes a model's probabilities mean what they say.

A model trained with cross-entropy (and label smoothing, and test-time averaging) is usually over- or
under-confident: of the faces it calls "happy" with probability 0.8, not 80 % are happy. Temperature scaling
(Guo et al., 2017) divides the log-probabilities by one temperature ``T`` fitted on held-out faces (PublicTest,
never PrivateTest) to minimise their negative log-likelihood, then renormalises. It never changes which class
is most probable, so accuracy, the confusion matrix and every recall stay exactly as they were.
"""

from __future__ import annotations

import numpy as np

from .metrics import negative_log_likelihood

#: The temperatures searched (a wider range means the model is broken, not miscalibrated).
T_RANGE = (0.05, 20.0)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(probs) / temperature)`` row by row (probabilities floored at 1e-12)."""
    logits = np.log(np.maximum(np.asarray(probs, dtype=np.float64), 1e-12)) / float(temperature)
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def _nll(y: np.ndarray, probs: np.ndarray, temperature: float) -> float:
    return negative_log_likelihood(y, apply_temperature(probs, temperature))


def fit_temperature(y_true: np.ndarray, probs: np.ndarray, *, tol: float = 1e-4) -> float:
    """The temperature that minimises the negative log-likelihood of ``y_true`` under ``probs``.

    The likelihood is unimodal in ``log T`` (convex in ``1 / T`` for fixed logits), so a golden-section
    search over ``log T`` within ``T_RANGE`` finds it to ``tol`` (relative).
    """
    y = np.asarray(y_true, dtype=int)
    if y.size == 0:
        raise ValueError("fit_temperature needs at least one labelled face")
    lo, hi = np.log(T_RANGE[0]), np.log(T_RANGE[1])
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = _nll(y, probs, np.exp(a)), _nll(y, probs, np.exp(b))
    while hi - lo > tol:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = _nll(y, probs, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = _nll(y, probs, np.exp(b))
    return float(np.exp((lo + hi) / 2.0))
