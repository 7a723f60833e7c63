"""service/index/store.py: IndexBuilder's rows — reused documents keep their vectors, new ones
are filled in order, and the manifest's first/count point at each document's rows."""

from __future__ import annotations

import numpy as np
import pytest

from service.index import store
from service.index.embedding import DIMENSION
from service.records import Sentence


def document(doc: str, *pieces: str) -> tuple[str, list[Sentence]]:
    """(text, sentences) of a document whose sentences are `pieces`, one space apart."""
    out, start = [], 0
    for n, piece in enumerate(pieces, start=1):
        out.append(Sentence(doc, n, start, start + len(piece), piece))
        start += len(piece) + 1
    return " ".join(pieces), out


A, B, N = document("a.txt", "A1", "A2"), document("b.txt", "B1", "B2", "B3"), document("new.txt", "N1")


def vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, DIMENSION)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_new_documents_get_their_vectors_in_order_and_consistent_rows():
    builder = store.IndexBuilder()
    builder.add("a.txt", A[0], "sha-a", 5, 1, A[1])
    builder.add("b.txt", B[0], "sha-b", 8, 1, B[1])
    assert builder.pending == ["A1", "A2", "B1", "B2", "B3"]
    with pytest.raises(RuntimeError):
        builder.embeddings()  # not embedded yet
    fresh = vectors(5, 1)
    builder.embed(fresh)
    assert np.array_equal(builder.embeddings(), fresh)
    assert (builder.manifest["a.txt"].first, builder.manifest["a.txt"].count) == (0, 2)
    assert (builder.manifest["b.txt"].first, builder.manifest["b.txt"].count) == (2, 3)


def test_unchanged_documents_keep_their_rows_from_the_previous_version(tmp_path):
    first = store.IndexBuilder()
    first.add("a.txt", A[0], "sha-a", 5, 1, A[1])
    first.add("b.txt", B[0], "sha-b", 8, 1, B[1])
    old_vectors = vectors(5, 2)
    first.embed(old_vectors)
    first.write(tmp_path, lambda folder: folder.mkdir())
    previous = store.load(tmp_path)

    second = store.IndexBuilder(previous)
    assert second.reusable("b.txt", "sha-b") and not second.reusable("b.txt", "sha-b2")
    assert not second.reusable("new.txt", "sha-n")
    second.add("new.txt", N[0], "sha-n", 2, 2, N[1])
    second.keep("b.txt", B[0], 8, 1)  # a.txt was removed
    assert second.pending == ["N1"]
    new_vector = vectors(1, 3)
    second.embed(new_vector)
    embeddings = second.embeddings()
    assert np.array_equal(embeddings[0], new_vector[0])
    assert np.array_equal(embeddings[1:], old_vectors[2:5])  # b.txt's rows, reused
    b = second.manifest["b.txt"]
    assert (b.first, b.count, b.sha256) == (1, 3, "sha-b")
    assert [s.text for s in second.sentences[b.first : b.first + b.count]] == ["B1", "B2", "B3"]
