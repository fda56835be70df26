"""Reading and writing named parameters of a module: the currency between agents and meta-learners."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from metaenvs.errors import CheckpointError, NonFiniteError


def snapshot(module: nn.Module, names: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """Detached copies of the named parameters of ``module`` (all, or just ``names``)."""
    params = dict(module.named_parameters())
    keys = list(params) if names is None else list(names)
    return {k: params[k].detach().clone() for k in keys}


@torch.no_grad()
def copy_into(module: nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """Write ``tensors`` into the parameters of ``module`` with the same names.

    Raises:
        CheckpointError: If a name is unknown or a shape differs; nothing is written then.
    """
    params = dict(module.named_parameters())
    unknown = sorted(set(tensors) - set(params))
    if unknown:
        raise CheckpointError(
            f"Initialization has parameters the model lacks: {unknown[:5]}. The model has: "
            f"{sorted(params)[:8]}... Build the agent with the same model as the initialization."
        )
    for name, value in tensors.items():
        if tuple(value.shape) != tuple(params[name].shape):
            raise CheckpointError(
                f"Parameter {name!r} has shape {tuple(value.shape)} in the initialization but "
                f"{tuple(params[name].shape)} in the model."
            )
    for name, value in tensors.items():
        params[name].copy_(value)


def finite_loss(loss: torch.Tensor, task: object, step: int) -> float:
    """``float(loss)``; raise :class:`NonFiniteError` naming the task and step if it is NaN or Inf."""
    value = float(loss.detach())
    if not math.isfinite(value):
        raise NonFiniteError(
            f"Loss became {value} at inner step {step} of task {task.id!r} ({task.dist_id}). "  # type: ignore[attr-defined]
            "The task was stopped; lower the inner learning rate or check the data."
        )
    return value


def global_norm(tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """L2 norm over all tensors (float64 scalar; NaN or Inf if any element is)."""
    if not tensors:
        return torch.zeros((), dtype=torch.float64)
    norms = torch._foreach_norm(list(tensors.values()))
    return torch.linalg.vector_norm(torch.stack(norms).double())


def check_finite(tensors: Mapping[str, torch.Tensor], what: str) -> float:
    """Return the global L2 norm of ``tensors``; raise :class:`NonFiniteError` if any value is NaN or Inf.

    The norm of finite values that overflow in their own dtype (a float32 entry of 1e25) is taken in
    float64, so it is finite whenever every value is.
    """
    norm = float(global_norm(tensors))
    if math.isfinite(norm):
        return norm
    bad = next((n for n, v in tensors.items() if not bool(torch.isfinite(v).all())), None)
    if bad is None:
        return float(torch.linalg.vector_norm(torch.stack([v.double().norm() for v in tensors.values()])))
    raise NonFiniteError(
        f"{what}: {bad!r} holds NaN or Inf. Lower the learning rate or "
        "meta step size, or check the data; nothing was saved."
    )


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(x)`` for ``x >= 0`` whose derivative at ``x == 0`` is 0 instead of inf.

    Adam's ``sqrt(v)`` at an entry whose gradient is exactly zero (a dead unit) has an infinite
    derivative, which autograd multiplies by the zero derivative of ``v`` and turns into NaN. Through
    ``v = c g^2`` the composite ``sqrt(c) |g|`` has derivative 0 at ``g = 0`` (its subgradient, what
    ``higher`` gives); elsewhere the values and derivatives are exactly ``torch.sqrt``'s.
    """
    positive = x > 0
    return torch.where(
        positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x)
    )
