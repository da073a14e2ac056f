"""The statistical model: a multinomial logistic regression (scikit-learn) over tf-idf weighted
features (character 1-3-grams, jieba words, the evidence's types and contexts), trained on
labelled reports. The fitted weights are kept as a compact artifact (vocabulary, idf, float16
weights) and applied here with numpy, so loading takes milliseconds and a report well under one."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression

MAX_FEATURES = 12000
MIN_DF = 2


@dataclass
class LinearModel:
    classes: list[str]
    vocabulary: dict[str, int]
    idf: np.ndarray  # float32 [features]
    weights: np.ndarray  # float16 [classes, features]
    intercept: np.ndarray  # float32 [classes]

    def vector(self, tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        counts = Counter(self.vocabulary[t] for t in tokens if t in self.vocabulary)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter((1.0 + math.log(c) for c in counts.values()), dtype=np.float32, count=len(counts))
        val = tf * self.idf[idx]
        return idx, val / np.linalg.norm(val)

    def probabilities(self, tokens: list[str]) -> dict[str, float]:
        idx, val = self.vector(tokens)
        z = self.intercept + (self.weights[:, idx].astype(np.float32) @ val if len(idx) else 0.0)
        z = z - z.max()
        p = np.exp(z)
        p /= p.sum()
        return dict(zip(self.classes, p.tolist()))

    def to_dict(self) -> dict:
        return {"classes": self.classes, "vocabulary": self.vocabulary, "idf": self.idf,
                "weights": self.weights, "intercept": self.intercept}

    @classmethod
    def from_dict(cls, d: dict) -> "LinearModel":
        return cls(list(d["classes"]), dict(d["vocabulary"]), d["idf"], d["weights"], d["intercept"])


def fit(docs: list[list[str]], labels: list[str], *, weights: list[float] | None = None, c: float = 8.0,
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
    lr = LogisticRegression(C=c, max_iter=2000)
    lr.fit(x, labels, sample_weight=weights)
    coef, intercept = lr.coef_, lr.intercept_
    if len(lr.classes_) == 2:  # binary: sklearn keeps one row
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    return LinearModel([str(k) for k in lr.classes_], vocabulary, idf, coef.astype(np.float16),
                       intercept.astype(np.float32))
