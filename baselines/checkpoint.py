"""Checkpoints of a meta-training run: tensors in safetensors, everything else in JSON.

A checkpoint is ``checkpoint.json`` (meta step, run config, history, meta-optimizer
hyper-parameters) pointing at ``ckpt-<step>.safetensors`` (initialization and
meta-optimizer state) by name and sha256. The tensor file is written first and
the JSON last, each atomically, so a run killed at any moment resumes from the
last complete checkpoint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save

from metaenvs.errors import CheckpointError
from metaenvs.io import load_safetensors, sha256_file, write_bytes_atomic, write_json_atomic

CHECKPOINT_JSON = "checkpoint.json"


def optimizer_tensors(optimizer: torch.optim.Optimizer | None) -> dict[str, torch.Tensor]:
    """Tensor entries of an optimizer's state, keyed ``optim.<param index>.<key>``."""
    if optimizer is None:
        return {}
    state = optimizer.state_dict()["state"]
    return {
        f"optim.{idx}.{key}": value.detach().clone()
        for idx, entry in state.items()
        for key, value in entry.items()
        if torch.is_tensor(value)
    }


def optimizer_json(optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """Non-tensor part of an optimizer's state dict."""
    if optimizer is None:
        return {}
    sd = optimizer.state_dict()
    scalars = {
        str(idx): {k: v for k, v in entry.items() if not torch.is_tensor(v)}
        for idx, entry in sd["state"].items()
    }
    return {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer_state(
    optimizer: torch.optim.Optimizer | None, tensors: Mapping[str, torch.Tensor], state: Mapping[str, Any]
) -> None:
    """Inverse of :func:`optimizer_tensors` plus :func:`optimizer_json`."""
    if optimizer is None or not state:
        return
    per_param: dict[int, dict[str, Any]] = {int(i): dict(v) for i, v in state["scalars"].items()}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            per_param.setdefault(int(idx), {})[name] = value.clone()
    optimizer.load_state_dict({"state": per_param, "param_groups": state["param_groups"]})


def save_checkpoint(
    directory: str | Path, step: int, tensors: Mapping[str, torch.Tensor], state: Mapping[str, Any]
) -> Path:
    """Write ``ckpt-<step>.safetensors`` then ``checkpoint.json``; drop older tensor files."""
    directory = Path(directory)
    name = f"ckpt-{step:08d}.safetensors"
    write_bytes_atomic(directory / name, save({k: v.contiguous() for k, v in tensors.items()}))
    write_json_atomic(
        directory / CHECKPOINT_JSON,
        {**state, "step": step, "tensors": name, "sha256": sha256_file(directory / name)},
    )
    for old in directory.glob("ckpt-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return directory / CHECKPOINT_JSON


MAX_CHECKPOINT_JSON_BYTES = 64 << 20
"""Largest ``checkpoint.json`` read (its history grows by one row per meta step)."""
TENSOR_FILE = re.compile(r"^ckpt-[0-9]{8}\.safetensors$")


def load_checkpoint(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The latest complete checkpoint in ``directory``, or ``None`` if there is none.

    Raises:
        CheckpointError: ``checkpoint.json`` is malformed, lacks a field, points outside the run
            folder, or its tensor file is missing or does not match it.
    """
    directory = Path(directory)
    path = directory / CHECKPOINT_JSON
    if not path.is_file():
        return None
    fix = "delete the run folder (or give another --out) to start over"
    if path.stat().st_size > MAX_CHECKPOINT_JSON_BYTES:
        raise CheckpointError(f"{path} is over {MAX_CHECKPOINT_JSON_BYTES} bytes; {fix}.")
    try:
        state = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); {fix}.") from exc
    fields = ("step", "tensors", "sha256", "config", "history", "meta_learner")
    missing = [k for k in fields if k not in state] if isinstance(state, dict) else list(fields)
    if missing:
        raise CheckpointError(f"{path} lacks {missing}; it was not written by meta_train; {fix}.")
    name = state["tensors"]
    if not isinstance(name, str) or not TENSOR_FILE.fullmatch(name):
        raise CheckpointError(
            f"{path} names the tensor file {name!r}; a checkpoint's tensors are ckpt-<8 digits>.safetensors "
            f"inside the run folder; {fix}."
        )
    tensor_file = directory / name
    if not tensor_file.is_file() or sha256_file(tensor_file) != state["sha256"]:
        raise CheckpointError(f"{tensor_file} is missing or does not match {path}; {fix}.")
    return load_safetensors(tensor_file), state
