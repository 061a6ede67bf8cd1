"""Classification metrics in plain numpy: accuracy, per-class precision/recall/F1, confusion matrix,
one-vs-rest ROC curves with AUC (micro and macro), and calibration (reliability bins, ECE, log-likelihood)."""

from __future__ import annotations

import numpy as np

from ..labels import EMOTIONS


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = len(EMOTIONS)) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def roc_curve(y_true_binary: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """False/true positive rates over all thresholds and the area under the curve (trapezoids; ties grouped)."""
    y = np.asarray(y_true_binary).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0]), float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    distinct = np.flatnonzero(np.diff(s)) if s.size > 1 else np.array([], dtype=int)
    ends = np.concatenate([distinct, [s.size - 1]])
    tps = np.cumsum(y)[ends]
    fps = (ends + 1) - tps
    tpr = np.concatenate([[0.0], tps / pos])
    fpr = np.concatenate([[0.0], fps / neg])
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def classification_report(y_true: np.ndarray, probs: np.ndarray) -> dict:
    """Every metric the model card and the evaluation report show."""
    y_true = np.asarray(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    k = probs.shape[1]
    y_pred = probs.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    present = support > 0
    onehot = np.eye(k)[y_true]
    per_class_auc, curves = [], {}
    for c in range(k):
        fpr, tpr, auc = roc_curve(onehot[:, c], probs[:, c])
        per_class_auc.append(auc)
        curves[EMOTIONS[c] if k == len(EMOTIONS) else str(c)] = (fpr, tpr)
    micro_fpr, micro_tpr, micro_auc = roc_curve(onehot.ravel(), probs.ravel())
    grid = np.linspace(0, 1, 201)
    macro_tpr = np.mean([np.interp(grid, f, t) for (f, t), ok in zip(curves.values(), present) if ok], axis=0)
    names = list(EMOTIONS) if k == len(EMOTIONS) else [str(c) for c in range(k)]
    return {
        "n": int(y_true.size),
        "accuracy": float(tp.sum() / max(1, y_true.size)),
        "macro_f1": float(f1[present].mean()),
        "weighted_f1": float((f1 * support).sum() / max(1.0, support.sum())),
        "macro_auc": float(np.nanmean([a for a, ok in zip(per_class_auc, present) if ok])),
        "micro_auc": micro_auc,
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                   "support": int(support[i]), "auc": float(per_class_auc[i])}
            for i, name in enumerate(names)
        },
        "confusion_matrix": cm.tolist(),
        "labels": names,
        "nll": negative_log_likelihood(y_true, probs),
        "calibration": reliability_bins(y_true, probs),
        "roc": {"micro": (micro_fpr, micro_tpr), "macro": (grid, macro_tpr), **curves},
    }


def reliability_bins(y_true: np.ndarray, probs: np.ndarray, bins: int = 15) -> dict:
    """Top-label calibration: faces grouped by the probability of their most probable class into ``bins``
    equal-width bins over [0, 1]; per bin the mean confidence, the accuracy and the count, and the expected
    calibration error (ECE: the count-weighted mean of ``|accuracy - confidence|``) and the maximum gap (MCE).
    """
    y_true = np.asarray(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y_true).astype(np.float64)
    # bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 goes to the first bin
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, weights=confidence, minlength=bins)
    acc_sum = np.bincount(which, weights=correct, minlength=bins)
    filled = count > 0
    mean_conf = np.divide(conf_sum, count, out=np.full(bins, np.nan), where=filled)
    accuracy = np.divide(acc_sum, count, out=np.full(bins, np.nan), where=filled)
    gaps = np.abs(accuracy - mean_conf)
    n = max(1, y_true.size)
    return {
        "bins": bins,
        "ece": float(np.nansum(gaps * count) / n),
        "mce": float(np.nanmax(gaps)) if filled.any() else float("nan"),
        "edges": np.linspace(0.0, 1.0, bins + 1).round(6).tolist(),
        "confidence": [None if not f else float(v) for v, f in zip(mean_conf, filled)],
        "accuracy": [None if not f else float(v) for v, f in zip(accuracy, filled)],
        "count": count.astype(int).tolist(),
    }


def negative_log_likelihood(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean of ``-log p(true class)`` (probabilities floored at 1e-12)."""
    p = np.asarray(probs, dtype=np.float64)[np.arange(len(y_true)), np.asarray(y_true)]
    return float(-np.log(np.maximum(p, 1e-12)).mean())
