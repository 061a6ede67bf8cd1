"""Classification metrics in plain numpy: accuracy, per-class precision/recall/F1, confusion matrix,
one-vs-rest ROC curves with AUC (micro and macro)."""

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
        "roc": {"micro": (micro_fpr, micro_tpr), "macro": (grid, macro_tpr), **curves},
    }
