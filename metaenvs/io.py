"""Safe, atomic files: JSON, and initializations as safetensors plus a JSON card.

Nothing here unpickles. Every write goes to a temporary file in the destination
folder and is renamed into place, so an interrupted write never leaves a half
file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from metaenvs.errors import CheckpointError, NonFiniteError

CARD_SUFFIX = ".json"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (with fsync before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically; NaN and Inf are refused."""
    try:
        text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False)
    except ValueError as exc:
        raise NonFiniteError(f"Refusing to write {path}: it would contain NaN or Inf ({exc}).") from exc
    write_bytes_atomic(path, (text + "\n").encode())


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def environment_versions() -> dict[str, str]:
    """Versions of the packages that decide a result, and the platform."""
    import gymnasium
    import numpy
    import stable_baselines3

    from metaenvs import __version__

    return {
        "metaenvs": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "gymnasium": gymnasium.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def card_path(path: str | os.PathLike) -> Path:
    """The JSON card that goes with ``path`` (``init.safetensors`` → ``init.json``)."""
    return Path(path).with_suffix(CARD_SUFFIX)


def save_initialization(
    path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], card: Mapping[str, Any]
) -> dict[str, Any]:
    """Save a meta-learned initialization as safetensors plus a JSON card.

    The card records what the caller passes (algorithm, distribution id, protocol
    hash, hyper-parameters) plus the file's sha256, parameter shapes and package
    versions.

    Raises:
        NonFiniteError: If any tensor holds NaN or Inf (nothing is written).

    Returns:
        The card as written.
    """
    for name, value in tensors.items():
        if not bool(torch.isfinite(value).all()):
            raise NonFiniteError(f"Refusing to save {path}: parameter {name!r} holds NaN or Inf.")
    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    full_card = {
        **card,
        "sha256": hashlib.sha256(data).hexdigest(),
        "file": Path(path).name,
        "parameters": {k: list(v.shape) for k, v in tensors.items()},
        "versions": environment_versions(),
    }
    write_bytes_atomic(path, data)
    write_json_atomic(card_path(path), full_card)
    return full_card


def load_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load tensors from a safetensors file, refusing anything else (pickles included)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No such file: {path}.")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head[:2] == b"\x80\x02" or head[:1] == b"\x80" or head[:2] == b"PK":
        raise CheckpointError(
            f"{path} looks like a pickle or torch.save archive. metaenvs never unpickles; "
            "convert it with safetensors.torch.save_file(state_dict, 'init.safetensors')."
        )
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a valid safetensors file: {exc}.") from exc


def load_initialization(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load an initialization and its card, checking the card's sha256 against the file.

    Returns:
        ``(tensors, card)``.

    Raises:
        CheckpointError: On a missing card, a sha256 mismatch or a file that is not safetensors.
        NonFiniteError: If a tensor holds NaN or Inf.
    """
    card_file = card_path(path)
    if not card_file.is_file():
        raise CheckpointError(f"{path} has no JSON card at {card_file}; save it with save_initialization().")
    card = json.loads(card_file.read_text())
    actual = sha256_file(path)
    if card.get("sha256") != actual:
        raise CheckpointError(
            f"sha256 of {path} is {actual} but its card says {card.get('sha256')}: the file was changed "
            "or belongs to another card."
        )
    tensors = load_safetensors(path)
    for name, value in tensors.items():
        if not bool(torch.isfinite(value).all()):
            raise NonFiniteError(f"{path}: parameter {name!r} holds NaN or Inf.")
    return tensors, card
