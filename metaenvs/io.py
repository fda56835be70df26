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

from metaenvs.errors import CheckpointError, InvalidArgumentError, NonFiniteError

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
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    """The process's umask, read without changing it where the OS shows it (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def writable_folder(path: str | os.PathLike) -> Path:
    """Create ``path`` as a folder if needed and check that files can be written in it.

    Raises:
        InvalidArgumentError: ``path`` is a file, or cannot be created or written, naming why.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise InvalidArgumentError(f"{folder} is a file, not a folder; give another output folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InvalidArgumentError(
            f"cannot write in the output folder {folder}: {exc.strerror or exc}; give a folder you can "
            "write to."
        ) from exc
    return folder


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


MAX_CARD_BYTES = 1 << 20
"""Largest initialization card read (1 MiB)."""
MAX_HEADER_BYTES = 100 << 20
"""Largest safetensors header accepted (the format's own limit is 100 MB)."""
PICKLE_STARTS = (b"(", b"c", b"]", b"}", b"I", b"S", b"V", b"N", b"(d", b"(l")


def load_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load tensors from a safetensors file, refusing anything else (pickles included).

    Raises:
        CheckpointError: The file is missing, a pickle (binary or text protocol) or ``torch.save``
            archive, or not a well-formed safetensors file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No such file: {path}.")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(9)
    never = (
        "metaenvs never unpickles; convert it with "
        "safetensors.torch.save_file(state_dict, 'init.safetensors')."
    )
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise CheckpointError(f"{path} looks like a pickle or torch.save archive. {never}")
    header = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    if len(head) < 9 or head[8:9] != b"{" or header > min(size - 8, MAX_HEADER_BYTES):
        if head.startswith(PICKLE_STARTS):
            raise CheckpointError(f"{path} looks like a text-protocol pickle, not safetensors. {never}")
        raise CheckpointError(
            f"{path} is not a safetensors file: it does not start with an 8-byte header length followed "
            "by a JSON header; save initializations with metaenvs.io.save_initialization()."
        )
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a valid safetensors file: {exc}.") from exc


def read_card(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON card of the initialization at ``path`` (size-limited, must be a JSON object).

    Raises:
        CheckpointError: The initialization or its card is missing, too large or malformed.
    """
    if not Path(path).is_file():
        raise CheckpointError(
            f"No such initialization file: {path} (meta-train one with `metaenvs train --out DIR`; it is "
            "DIR/init.safetensors)."
        )
    card_file = card_path(path)
    if not card_file.is_file():
        raise CheckpointError(f"{path} has no JSON card at {card_file}; save it with save_initialization().")
    if card_file.stat().st_size > MAX_CARD_BYTES:
        raise CheckpointError(f"{card_file} is over the {MAX_CARD_BYTES}-byte limit of a card.")
    try:
        card = json.loads(card_file.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(
            f"{card_file} is not a valid JSON card ({exc}); re-save the initialization with "
            "save_initialization()."
        ) from exc
    if not isinstance(card, dict):
        raise CheckpointError(f"{card_file} is not a JSON object; a card maps field names to values.")
    return card


def load_initialization(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load an initialization and its card, checking the card's sha256 against the file.

    Returns:
        ``(tensors, card)``.

    Raises:
        CheckpointError: On a missing file or card, a malformed card, a sha256 mismatch or a file
            that is not safetensors.
        NonFiniteError: If a tensor holds NaN or Inf.
    """
    card = read_card(path)
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
