"""Text as the classifier reads it: normalised (full-width to half-width, lower case), split into
clauses, segmented into words with jieba (its dictionary initialised once per process, cached in
the temp directory, with the evidence words added so they stay whole), and turned into features:
character 1-3-grams within a clause and jieba words."""
from __future__ import annotations

import logging
import tempfile
import threading
import unicodedata
import warnings

with warnings.catch_warnings():  # jieba 0.42 imports pkg_resources, which warns on import
    warnings.simplefilter("ignore")
    import jieba

from services.runtime import language

from .lexicon import DANGER_WORDS, EVIDENCE

_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None


def tokenizer() -> jieba.Tokenizer:
    """The process's one jieba tokenizer, initialised at first use."""
    global _tokenizer
    with _lock:
        if _tokenizer is None:
            jieba.setLogLevel(logging.WARNING)
            t = jieba.Tokenizer()
            t.tmp_dir = tempfile.gettempdir()
            t.initialize()
            for words in list(EVIDENCE.values()) + [DANGER_WORDS]:
                for word, _ in words:
                    if len(word) > 1:
                        t.add_word(word, freq=2000)
            _tokenizer = t
        return _tokenizer


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").lower().strip()


def words(text: str) -> list[str]:
    """jieba words of the normalised text, punctuation and spaces dropped."""
    return [w for w in tokenizer().lcut(text, HMM=True) if w.strip() and not _punct(w)]


def _punct(w: str) -> bool:
    return all(unicodedata.category(c)[0] in "PSZ" for c in w)


def features(text: str, extra: list[str] = ()) -> list[str]:
    """Character 1-3-grams of each clause, jieba words ("w:"), and the extra tokens the evidence
    adds (its contexts and types)."""
    norm = normalize(text)
    out: list[str] = []
    for clause in language.clauses(norm):
        chars = "".join(c for c in clause if not _punct(c))
        for n in (1, 2, 3):
            out.extend(chars[i:i + n] for i in range(len(chars) - n + 1))
        out.extend("w:" + w for w in words(clause))
    out.extend(extra)
    return out
