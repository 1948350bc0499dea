"""The matcher runs only the model it was measured with."""

from __future__ import annotations

from pathlib import Path

import pytest

from faq.embedding import Encoder, ModelFileError, get_encoder, installed_model


def test_a_model_file_that_differs_is_refused_naming_the_file(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    data = bytearray(installed_model().read_bytes())
    data[len(data) // 2] ^= 0xFF  # one damaged byte
    model.write_bytes(data)
    with pytest.raises(ModelFileError) as refused:
        Encoder(model)
    assert str(refused.value).startswith(f"{model}: the FAQ matcher's model file has SHA-256 ")
    assert "expected 8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6" in str(
        refused.value
    )


def test_a_missing_model_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=f"^{tmp_path}/absent.onnx: cannot read"):
        Encoder(tmp_path / "absent.onnx")


def test_the_installed_model_and_the_shipped_tokenizer_embed_alike_texts_alike() -> None:
    vectors = get_encoder().encode(
        ["When is pay day?", "What date do we get paid?", "Where do I park?"]
    )
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
