"""Rotated 2-D Himmelblau losses, the toy problem of continual trajectory shifting (Shin et al. 2021).

Task ``t`` of ``n`` centres Himmelblau's function at the point ``c_t`` on a circle of
radius 7 around (5, 5), at angle ``2 pi t / n``, and rotates it by ``a_t``::

    (u, v) = R(a_t) (p - c_t) / s
    f_t(p) = (w1 (u^2 + v - 11)^2 + w2 (u + v^2 - 7)^2) / z

The "model" is the point ``p`` itself (``agents.models.Point``). Two variants:

* ``variant="code"`` (default), the authors' released environment
  (JWoong148/ContinualTrajectoryShifting, ``synthetic/loss.py`` and ``env.npz``):
  coordinates divided by ``s = 3``, ``z = 1``, term weights ``w1 = 0.73845121``,
  ``w2 = 0.9954126``, and on the ``train`` split the eight rotation angles of their
  ``env.npz`` (figures carried over with their source named). With these, inner SGD
  at lr 0.05 is stable from anywhere in [-5, 15]^2, as in the paper's figures.
* ``variant="template"``, the issue's template
  ``T(x, y) = ((x^2 - 10x + y + 9)^2 + (x + y^2 - 10y + 13)^2) / 3`` (Himmelblau
  centred at (5, 5), value divided by 3): ``s = 1``, ``z = 3``, ``w1 = w2 = 1``. It is
  about 27 times steeper far from the minima, so lr 0.05 diverges from distant
  starts; use a smaller inner learning rate with it.

The ``test`` split holds the same circle points with rotations ``a_t ~ U[0, 2 pi)``
drawn from the distribution's seed: held-out tasks are new rotations.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from metaenvs.core import SupervisedData, SupervisedTaskDistribution, Task
from metaenvs.protocol import Protocol
from metaenvs.seeding import derive_seed
from metaenvs.validation import one_of, positive_float, positive_int

CENTRE = (5.0, 5.0)
CODE_ANGLES = (0.91924315, 1.11506543, 4.41522871, 5.9905629, 3.90302512, 4.01772722, 3.13728475, 0.28030319)
VARIANTS = {
    # name: (w1, w2, coordinate scale s, value scale z)
    "code": (0.73845121, 0.9954126, 3.0, 1.0),
    "template": (1.0, 1.0, 1.0, 3.0),
}
PARAM_FIELDS = ("centre_x", "centre_y", "rotation", "w1", "w2", "coord_scale", "value_scale")


def rotated_himmelblau(points: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """``f_t(p)`` for rows ``p`` of ``points`` (n, 2) and task rows of ``params`` (``PARAM_FIELDS``)."""
    params = params.reshape(-1, len(PARAM_FIELDS)).to(points.dtype)
    cx, cy, angle, w1, w2, scale, z = params.unbind(dim=1)
    dx, dy = points[:, 0] - cx, points[:, 1] - cy
    cos, sin = torch.cos(angle), torch.sin(angle)
    u, v = (cos * dx - sin * dy) / scale, (sin * dx + cos * dy) / scale
    return (w1 * (u**2 + v - 11) ** 2 + w2 * (u + v**2 - 7) ** 2) / z


class RotatedHimmelblau(SupervisedTaskDistribution):
    """Eight shifted, rotated Himmelblau losses; the model is a 2-D point.

    Args:
        n_tasks: Tasks per split (points on the circle).
        radius: Circle radius around (5, 5).
        seed: Fixes the rotations.
    """

    default_model = {"type": "point", "dim": 2}  # noqa: RUF012 - read-only spec

    def __init__(self, n_tasks: int = 8, radius: float = 7.0, variant: str = "code", seed: int = 0) -> None:
        super().__init__(seed)
        self.n_tasks = positive_int("n_tasks", n_tasks)
        self.radius = positive_float("radius", radius)
        self.variant = one_of("variant", variant, VARIANTS)

    def _split_sizes(self) -> dict[str, int | None]:
        return {"train": self.n_tasks, "test": self.n_tasks}

    def _finite_task(self, split: str, index: int) -> tuple[str, dict[str, Any]]:
        angle = 2 * math.pi * index / self.n_tasks
        rng = np.random.default_rng(derive_seed(self.seed, split, index))
        rotation = float(rng.uniform(0.0, 2 * math.pi))
        if split == "train" and self.variant == "code" and self.n_tasks == len(CODE_ANGLES):
            rotation = CODE_ANGLES[index]
        w1, w2, scale, z = VARIANTS[self.variant]
        return f"{index:02d}", {
            "centre_x": CENTRE[0] + self.radius * math.sin(angle),
            "centre_y": CENTRE[1] + self.radius * math.cos(angle),
            "rotation": rotation,
            "w1": w1,
            "w2": w2,
            "coord_scale": scale,
            "value_scale": z,
        }

    def load_task(self, task: Task) -> SupervisedData:
        task = self.check_task(task)
        p = task.params
        x = torch.zeros(1, 1)
        y = torch.tensor([[p[name] for name in PARAM_FIELDS]], dtype=torch.float64)
        return SupervisedData(x, y, x, y, (1,), 2, loss="himmelblau", metric="himmelblau")

    def default_protocol(self) -> Protocol:
        return self.inner_loop_protocol(
            100, "himmelblau", 0.05, seeds=(0,), optimizer="momentum", min_seeds=1
        )
