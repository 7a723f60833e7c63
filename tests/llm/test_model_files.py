"""Assembly of the embedded model from its part files, with small fake parts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.llm import model_files
from service.llm.model_files import MODEL_FILENAME, ModelFileError, ensure_model
from service.settings import Settings

CHUNKS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("FOOTNOTE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FOOTNOTE_MODEL_PATH", raising=False)
    yield tmp_path / "data"


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    parts = []
    for i, chunk in enumerate(CHUNKS, start=1):
        path = tmp_path / "parts" / f"part{i:02d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(chunk)
        parts.append(path)
    monkeypatch.setattr(model_files, "find_parts", lambda: parts)
    expected = hashlib.sha256(b"".join(CHUNKS)).hexdigest()
    monkeypatch.setattr(model_files, "EXPECTED_SHA256", expected)
    return parts


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_assembles_parts_in_order(data_dir: Path, fake_parts: list[Path]) -> None:
    path = ensure_model(Settings(), progress=False)
    assert path == data_dir / "models" / MODEL_FILENAME
    assert path.read_bytes() == b"".join(CHUNKS)
    assert _leftovers(path.parent) == []


def test_progress_goes_to_stderr(
    data_dir: Path, fake_parts: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ensure_model(Settings(), progress=True)
    out = capsys.readouterr()
    assert out.out == ""
    assert "100%" in out.err


def test_hash_mismatch_raises_and_leaves_nothing(
    data_dir: Path, fake_parts: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_files, "EXPECTED_SHA256", "0" * 64)
    with pytest.raises(ModelFileError, match="SHA-256"):
        ensure_model(Settings(), progress=False)
    folder = data_dir / "models"
    assert list(folder.iterdir()) == []


def test_existing_file_is_reused(
    data_dir: Path, fake_parts: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ensure_model(Settings(), progress=False)

    def no_parts() -> list[Path]:
        raise AssertionError("re-assembled an already verified model")

    monkeypatch.setattr(model_files, "find_parts", no_parts)
    # Neither re-assembled nor rehashed: the sidecar's size and mtime still match.
    monkeypatch.setattr(model_files, "_sha256_of", lambda _p: pytest.fail("rehashed"))
    assert ensure_model(Settings(), progress=False) == first


def test_changed_file_is_rehashed_and_rebuilt(data_dir: Path, fake_parts: list[Path]) -> None:
    path = ensure_model(Settings(), progress=False)
    path.write_bytes(b"corrupted")
    assert ensure_model(Settings(), progress=False).read_bytes() == b"".join(CHUNKS)


def test_missing_sidecar_is_recreated_by_hashing(data_dir: Path, fake_parts: list[Path]) -> None:
    path = ensure_model(Settings(), progress=False)
    sidecar = path.with_name(path.name + ".sha256")
    sidecar.unlink()
    assert ensure_model(Settings(), progress=False) == path
    assert sidecar.is_file()


def test_missing_parts_name_the_install_command(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_files, "_part_path", lambda n: None)
    with pytest.raises(ModelFileError, match="--require-hashes -r requirements-model.txt"):
        ensure_model(Settings(), progress=False)


def test_model_path_override(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    custom = tmp_path / "custom.gguf"
    custom.write_bytes(b"GGUF")
    monkeypatch.setenv("FOOTNOTE_MODEL_PATH", str(custom))
    monkeypatch.setattr(model_files, "find_parts", lambda: pytest.fail("assembled"))
    assert ensure_model(Settings(), progress=False) == custom


def test_model_path_override_missing(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOOTNOTE_MODEL_PATH", str(tmp_path / "nope.gguf"))
    with pytest.raises(ModelFileError, match="FOOTNOTE_MODEL_PATH"):
        ensure_model(Settings(), progress=False)
