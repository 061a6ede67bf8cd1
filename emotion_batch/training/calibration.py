"""Temperature scaling: one number that makes a model's probabilities mean what they say (and, with a per-class
bias, answers in another labelling convention).

A model trained with cross-entropy (and label smoothing, and test-time averaging) is usually over- or
under-confident: of the faces it calls "happy" with probability 0.8, not 80 % are happy. Temperature scaling
(Guo et al., 2017) divides the log-probabilities by one temperature ``T`` fitted on held-out faces (PublicTest,
never PrivateTest) to minimise their negative log-likelihood, then renormalises. It never changes which class
is most probable, so accuracy, the confusion matrix and every recall stay exactly as they were.

``fit_temperature_and_bias`` also fits a log-odds bias per class (against the FER+ annotators' majority labels,
or any soft targets): the file then answers as the majority of ten annotators would, not as FER2013's original single
labels do, and that changes answers on purpose (README, "Which labels the model follows").

``logit_adjustment`` is a further bias that trades the common classes' answers for the rare ones' (Menon et
al., 2021): ``-tau * log(prior)``. A calibrated model's most probable class is the best guess for faces drawn
as the calibration set was (38 % neutral, under 1 % disgust); dividing each class's probability by
``prior ** tau`` moves the answers towards the rarer expressions that real photos of reactions hold more of.
``tau`` 0 changes nothing; 1 aims at equal recall.
"""

from __future__ import annotations

import numpy as np

from .metrics import negative_log_likelihood

#: The temperatures searched (a wider range means the model is broken, not miscalibrated).
T_RANGE = (0.05, 20.0)


def apply_temperature(probs: np.ndarray, temperature: float, bias: np.ndarray | None = None) -> np.ndarray:
    """``softmax(log(probs) / temperature + bias)`` row by row (probabilities floored at 1e-12): what
    ``model_layers.TemperatureScaling`` computes."""
    logits = np.log(np.maximum(np.asarray(probs, dtype=np.float64), 1e-12)) / float(temperature)
    if bias is not None:
        logits = logits + np.asarray(bias, dtype=np.float64)
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


def fit_temperature_and_bias(targets: np.ndarray, probs: np.ndarray) -> tuple[float, np.ndarray]:
    """The temperature and per-class bias that make ``softmax(log(probs) / T + bias)`` closest to ``targets``
    (rows of class shares, e.g. the FER+ annotators' votes), by cross-entropy.

    A labelling convention as well as a calibration: where a model trained on one set of labels answers
    "angry" for faces most annotators of another set call "neutral", the bias moves those answers, and the
    temperature sets how sure the probabilities are. The cross-entropy is convex in ``(1 / T, bias)`` (a
    log-sum-exp of linear functions minus a linear one), so L-BFGS finds the one minimum. The bias is
    returned with its mean at zero (adding one number to every class changes nothing).

    Args:
        targets: ``(n, k)`` non-negative rows summing to 1 (one-hot rows fit a hard-label convention).
        probs: ``(n, k)`` the model's probabilities for the same faces.

    Returns:
        ``(temperature, bias)``.
    """
    from scipy.optimize import minimize

    targets = np.asarray(targets, dtype=np.float64)
    z = np.log(np.maximum(np.asarray(probs, dtype=np.float64), 1e-12))
    if z.shape != targets.shape or not len(z):
        raise ValueError(f"targets and probs must be the same non-empty (n, k) shape. Received: {targets.shape} and {z.shape}")

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        logits = theta[0] * z + theta[1:]
        logits -= logits.max(axis=1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        grad = np.exp(log_p) - targets  # d loss / d logits, row by row
        return float(-(targets * log_p).sum(axis=1).mean()), np.r_[(grad * z).sum(axis=1).mean(), grad.mean(axis=0)]

    inverse_range = (1.0 / T_RANGE[1], 1.0 / T_RANGE[0])
    result = minimize(loss, np.r_[1.0, np.zeros(z.shape[1])], jac=True, method="L-BFGS-B",
                      bounds=[inverse_range] + [(None, None)] * z.shape[1])
    bias = result.x[1:] - result.x[1:].mean()
    return float(1.0 / result.x[0]), bias


def logit_adjustment(y: np.ndarray, tau: float, *, classes: int) -> np.ndarray:
    """The per-class log-odds bias ``-tau * log(prior)``, centred on zero, with ``prior`` the class shares of
    the labels ``y`` (every class counted at least once, so an absent class gets a finite bias).

    Raises:
        ValueError: ``tau`` outside 0..1, or no labels.
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be within 0..1. Received: tau={tau!r}")
    y = np.asarray(y, dtype=np.int64)
    if not len(y):
        raise ValueError("logit_adjustment needs labels to measure the class shares on")
    counts = np.maximum(np.bincount(y, minlength=classes)[:classes], 1).astype(np.float64)
    adjustment = -tau * np.log(counts / counts.sum())
    return adjustment - adjustment.mean()
