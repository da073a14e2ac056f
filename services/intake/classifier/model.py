"""The statistical model as intake applies it: a multinomial logistic regression over tf-idf
weighted features (character 1-3-grams, jieba words, the evidence's types and contexts), kept as
a compact artifact (vocabulary, idf, float16 weights) and applied with numpy, so loading takes
milliseconds and a report well under one. Fitted by `fitting` (scikit-learn), at training only."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np


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
