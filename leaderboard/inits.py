"""Initializations on the board: each must load into the protocol's model, and is identified by its
canonical tensors.

An initialization reaches the board only as its safetensors bytes (never unpickled). It must fit the
model the protocol prescribes: every tensor named after one of the model's parameters (any non-empty
subset, as ``agents.parameters.copy_into`` accepts), with the parameter's shape and dtype, and finite.
Its card is self-reported, so its ``dist_id``, ``split_hash`` and ``protocol_id`` must be present and be
the installed suite's.

The sha256 that keys an entry is :func:`canonical_sha256` of the tensors (sorted names, shapes, values
as little-endian float64), not of the file: re-saving the same weights with other metadata or another
float dtype gives the same key, so it cannot make a second entry.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from typing import Any

import torch

from leaderboard.checks import Reference, listed
from metaenvs.errors import SubmissionError

MAX_INIT_BYTES = 256 * 1024 * 1024
"""Largest initialization file accepted with a submission (256 MiB)."""
CARD_KEYS = ("dist_id", "split_hash", "protocol_id", "protocol_hash")
"""Card fields that must be present (the card is self-reported: a missing field is a refusal)."""


def load_tensors(raw: bytes, where: str) -> dict[str, torch.Tensor]:
    """Tensors of safetensors bytes; anything else (a pickle, a torch archive, text) is refused.

    Raises:
        SubmissionError: The bytes are not a safetensors file.
    """
    from safetensors.torch import load

    if raw[:1] == b"\x80" or raw[:2] == b"PK":
        raise SubmissionError(
            f"{where} looks like a pickle or torch.save archive; metaenvs never unpickles: convert it with "
            "safetensors.torch.save_file(state_dict, 'init.safetensors')."
        )
    if len(raw) < 8 or struct.unpack("<Q", raw[:8])[0] > len(raw) - 8:
        raise SubmissionError(
            f"{where} is not a safetensors file (its first 8 bytes are no header length within the file); "
            "save initializations with metaenvs.io.save_initialization."
        )
    try:
        return load(raw)
    except Exception as exc:
        raise SubmissionError(f"{where} is not a valid safetensors file: {str(exc)[:200]}.") from None


def canonical_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 of the tensors themselves: sorted names, shapes and float64 little-endian values."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        value = tensors[name].detach().to("cpu")
        wide = value.to(torch.float64) if value.is_floating_point() else value.to(torch.int64)
        header = json.dumps({"name": name, "shape": list(value.shape)}, sort_keys=True)
        digest.update(header.encode() + b"\0")
        digest.update(
            wide.contiguous().numpy().astype("<f8" if value.is_floating_point() else "<i8").tobytes()
        )
    return digest.hexdigest()


def tensor_problems(tensors: Mapping[str, torch.Tensor], ref: Reference) -> list[str]:
    """One line per way the tensors do not fit the protocol's model (names, shapes, dtypes, finiteness)."""
    if not tensors:
        return ["init: the initialization holds no tensors; it must set some of the model's parameters."]
    problems = []
    unknown = sorted(n for n in tensors if n not in ref.params)
    if unknown:
        shown = [repr(n[:60]) for n in unknown]
        problems.append(
            f"init: tensors the protocol's model has no parameter for: {listed(shown)}; the model's "
            f"parameters are {listed(sorted(ref.params))}."
        )
    known = sorted(n for n in tensors if n in ref.params)
    shapes = [
        f"{n} {tuple(tensors[n].shape)} (model {ref.params[n][0]})"
        for n in known
        if tuple(tensors[n].shape) != ref.params[n][0]
    ]
    if shapes:
        problems.append(f"init: shapes unlike the protocol's model: {listed(shapes)}.")
    dtypes = [
        f"{n} {str(tensors[n].dtype).removeprefix('torch.')} (model {ref.params[n][1]})"
        for n in known
        if str(tensors[n].dtype).removeprefix("torch.") != ref.params[n][1]
    ]
    if dtypes:
        problems.append(
            f"init: dtypes unlike the protocol's model: {listed(dtypes)}; save in the model's dtype."
        )
    bad = sorted(
        n
        for n, t in tensors.items()
        if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all())
    )
    if bad:
        problems.append(f"init: tensors holding NaN or Inf: {listed([repr(n[:60]) for n in bad])}.")
    return problems


def card_problems(card: Mapping[str, Any], dist: Any, protocol: Any, sha256: str) -> list[str]:
    """The card must name the initialization's sha256 and the installed distribution, split and protocol."""
    problems = []
    if card["sha256"] != sha256:
        problems.append("init: the card's sha256 is not the initialization's sha256.")
    missing = [k for k in CARD_KEYS if k not in card]
    if missing:
        problems.append(
            f"init: the card records no {', '.join(missing)}; cards written by `metaenvs train` record "
            "them, and a card without them cannot show what the initialization was trained for."
        )
    if "dist_id" in card and card["dist_id"] != dist.id:
        problems.append(
            f"init: the card records that the initialization was meta-trained on {card['dist_id']}, not on "
            f"{dist.id}."
        )
    if "split_hash" in card and card["split_hash"] != dist.split_hash():
        problems.append(
            "init: the initialization was meta-trained under another split of the tasks, so it may have seen "
            "held-out tasks; meta-train with --dist-seed 0 and this suite's version."
        )
    if "protocol_id" in card and card["protocol_id"] != protocol.id:
        problems.append(f"init: the card's protocol_id {card['protocol_id']!r} is not {protocol.id!r}.")
    return problems


def init_problems(
    data: Mapping[str, Any], dist: Any, ref: Reference, raw: bytes | None
) -> tuple[list[str], str | None]:
    """``(problems, canonical sha256)`` of the result's initialization (``None`` for scratch or when the
    tensors cannot be read).

    Args:
        data: The result (schema-valid).
        dist: The installed distribution.
        ref: Its :class:`~leaderboard.checks.Reference`.
        raw: The initialization's bytes (``--init``, or the board's stored copy), or None if not given.
    """
    init = data["init"]
    if init["kind"] != "file":
        if raw is not None:
            return ["--init was given but the result was evaluated from scratch (no initialization)."], None
        return [], None
    problems = card_problems(init["card"], dist, dist.protocol, init["sha256"])
    if raw is None:
        problems.append(
            f"init: the result was evaluated from initialization {init['sha256'][:16]}... but the file was "
            "not given: submit it with --init FILE, so that the entry can be verified (a result without its "
            "initialization is refused, so it cannot hold the place of the initialization's owner)."
        )
        return problems, None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != init["sha256"]:
        problems.append(
            f"init: sha256 of the initialization file is {digest} but the result was evaluated from "
            f"{init['sha256']}; submit the initialization the result names."
        )
        return problems, None
    try:
        tensors = load_tensors(raw, "init: the initialization")
    except SubmissionError as exc:
        return problems + exc.problems, None
    problems += tensor_problems(tensors, ref)
    return problems, canonical_sha256(tensors)
