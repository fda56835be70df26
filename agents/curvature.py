"""The one conjugate gradient, for one system or a stack of them (one per task).

iMAML solves ``(I + H/reg) v = g`` with it, ``H`` a Hessian map from the one HVP,
:func:`agents.functional.linearization`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from agents.task_data import Params
from metaenvs.errors import IndefiniteSystemError


def task_dot(a: Params, b: Params, batched: bool) -> torch.Tensor:
    """Inner product of two parameter dicts: a scalar, or one per task ``(B,)`` if stacked."""
    if not batched:
        return sum((a[k] * b[k]).sum() for k in a)
    return sum((a[k] * b[k]).flatten(1).sum(1) for k in a)


@dataclass
class CGInfo:
    """What :func:`conjugate_gradient` did: iterations run and each task's final relative residual."""

    iterations: int
    relative_residual: list[float]


def conjugate_gradient(
    matvec: Callable[[Params], Params],
    rhs: Params,
    steps: int,
    tol: float = 0.0,
    batched: bool = False,
    tasks: Sequence[Any] = (),
) -> tuple[Params, CGInfo]:
    """Solve ``A x = rhs`` for symmetric positive-definite ``A`` (one system per task if stacked).

    Stops after ``steps`` iterations or once every system's residual is at most ``tol`` times its
    right-hand side (a converged system is frozen while the others go on).

    Raises:
        IndefiniteSystemError: If a search direction has ``p^T A p <= 0`` (``A`` is not positive
            definite, so CG's answer would be meaningless); names the tasks.
    """
    x = {k: torch.zeros_like(v) for k, v in rhs.items()}
    r = {k: v.clone() for k, v in rhs.items()}
    p = {k: v.clone() for k, v in rhs.items()}
    rr = task_dot(r, r, batched)
    limit = (tol**2) * rr
    iterations = 0
    for _ in range(steps):
        alive = rr > limit
        if not bool(alive.any()):
            break
        ap = matvec(p)
        curvature = task_dot(p, ap, batched)
        bad = alive & (curvature <= 0)
        if bool(bad.any()):
            which = [t.id for t, b in zip(tasks, bad.reshape(-1).tolist(), strict=False) if b]
            raise IndefiniteSystemError(
                "The linear system of the implicit gradient is not positive definite (p^T A p = "
                f"{float(curvature.reshape(-1)[bad.reshape(-1)][0]):.3g}"
                f"{f' for tasks {which}' if which else ''}): "
                "the Hessian of the inner loss has eigenvalues below -reg there. Raise reg (lambda), add "
                "damping, or train the inner problem closer to a minimum."
            )
        alpha = torch.where(alive, rr / torch.where(alive, curvature, torch.ones_like(curvature)), 0.0)
        x = {k: x[k] + _expand(alpha, x[k], batched) * p[k] for k in x}
        r = {k: r[k] - _expand(alpha, r[k], batched) * ap[k] for k in r}
        rr_new = task_dot(r, r, batched)
        beta = torch.where(alive, rr_new / torch.where(alive, rr, torch.ones_like(rr)), 0.0)
        p = {
            k: torch.where(_expand(alive, r[k], batched), r[k] + _expand(beta, p[k], batched) * p[k], p[k])
            for k in p
        }
        rr = torch.where(alive, rr_new, rr)
        iterations += 1
    start = task_dot(rhs, rhs, batched)
    relative = torch.where(
        start > 0, (rr / torch.where(start > 0, start, torch.ones_like(start))).sqrt(), 0.0
    )
    return x, CGInfo(iterations, [float(v) for v in relative.reshape(-1)])


def _expand(value: torch.Tensor, like: torch.Tensor, batched: bool) -> torch.Tensor:
    """A per-task scalar broadcast against a (stacked) parameter tensor."""
    return value.reshape(-1, *([1] * (like.dim() - 1))) if batched else value
