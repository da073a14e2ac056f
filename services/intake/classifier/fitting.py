"""Fitting the statistical model (scikit-learn), at training only: intake applies the fitted
weights with numpy (`model.LinearModel`), so loading a classifier needs no scikit-learn. (The
knowledge base's phrasing model is fitted in intake whenever its index is built: `knowledge`.)"""
from __future__ import annotations

import math
import os
from collections import Counter

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from .model import LinearModel

MAX_FEATURES = 12000
# The regularisation (inverse strength) of the regression; INTAKE_TRAIN_C overrides it.
DEFAULT_C = 60.0
MIN_DF = 2


def fit(docs: list[list[str]], labels: list[str], *, weights: list[float] | None = None, c: float | None = None,
        max_features: int = MAX_FEATURES) -> LinearModel:
    """Vocabulary (features in at least MIN_DF documents, the most frequent first), idf, and the
    regression's weights."""
    df = Counter(t for doc in docs for t in set(doc))
    min_df = MIN_DF if len(docs) >= 50 else 1
    kept = sorted((t for t, n in df.items() if n >= min_df), key=lambda t: (-df[t], t))[:max_features]
    vocabulary = {t: i for i, t in enumerate(kept)}
    n = len(docs)
    idf = np.array([math.log((1 + n) / (1 + df[t])) + 1.0 for t in kept], dtype=np.float32)
    rows, cols, vals = [], [], []
    for r, doc in enumerate(docs):
        counts = Counter(vocabulary[t] for t in doc if t in vocabulary)
        if not counts:
            continue
        v = np.array([(1.0 + math.log(cn)) * idf[i] for i, cn in counts.items()], dtype=np.float64)
        v /= np.linalg.norm(v)
        rows += [r] * len(counts)
        cols += list(counts.keys())
        vals += v.tolist()
    x = sparse.csr_matrix((vals, (rows, cols)), shape=(n, len(kept)))
    classes = sorted(set(labels))
    if len(classes) == 1:
        return LinearModel(classes, vocabulary, idf, np.zeros((1, len(kept)), dtype=np.float16),
                           np.zeros(1, dtype=np.float32))
    lr = LogisticRegression(C=c if c is not None else float(os.environ.get("INTAKE_TRAIN_C", DEFAULT_C)), max_iter=2000)
    lr.fit(x, labels, sample_weight=weights)
    coef, intercept = lr.coef_, lr.intercept_
    if len(lr.classes_) == 2:  # binary: sklearn keeps one row
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    return LinearModel([str(k) for k in lr.classes_], vocabulary, idf, coef.astype(np.float16),
                       intercept.astype(np.float32))
