"""Sinusoid regression, the MAML setup (Finn et al. 2017, section 5.1).

Task: ``y = A * sin(x - phase)`` with amplitude ``A ~ U[0.1, 5]``, phase
``~ U[0, pi]`` and inputs ``x ~ U[-5, 5]``. The training split is infinite (each
meta-batch draws new functions); ``val`` and ``test`` are fixed lists of functions
chosen by the distribution's seed.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from metaenvs.core import SupervisedData, SupervisedTaskDistribution, Task
from metaenvs.protocol import Protocol
from metaenvs.seeding import derive_seed
from metaenvs.validation import positive_int

AMPLITUDE = (0.1, 5.0)
PHASE = (0.0, float(np.pi))
X_RANGE = (-5.0, 5.0)


class SinusoidRegression(SupervisedTaskDistribution):
    """MAML's sinusoid regression.

    Args:
        shots: Training points per task (K).
        query: Query points per task (the outer loss and the score).
        val_tasks: Number of fixed validation functions.
        test_tasks: Number of fixed held-out test functions.
        seed: Fixes the validation and test functions.
    """

    meta_defaults: ClassVar = {"leap": {"meta_lr": 0.01}, "imaml": {"reg": 10.0}}
    """Leap's default SGD meta step of 0.1 (its Omniglot setting) diverges here: the regression losses
    are larger, so is its meta-gradient (norm 41 at the first step); 0.01 trains. iMAML's linear system
    ``I + H / reg`` at the proximal solution (float64, the protocol's 32 steps, 6 training tasks drawn
    with seed 0) has negative eigenvalues on 4 of 6 tasks at ``reg=1`` (smallest eigenvalue of the
    system -3.1), 3 at ``reg=2``, 1 at ``reg=5`` (-0.05) and none at ``reg=10`` (smallest 0.32), so
    10 (``tests/test_second_order.py`` checks it; CG refuses an indefinite system while training)."""

    renamed_kwargs: ClassVar = {"test_points": "query", "n_val": "val_tasks", "n_test": "test_tasks"}

    def __init__(
        self, shots: int = 10, query: int = 100, val_tasks: int = 50, test_tasks: int = 100, seed: int = 0
    ) -> None:
        super().__init__(seed)
        self.shots = positive_int("shots", shots)
        self.query = positive_int("query", query)
        self.val_tasks = positive_int("val_tasks", val_tasks)
        self.test_tasks = positive_int("test_tasks", test_tasks)

    def _split_sizes(self) -> dict[str, int | None]:
        return {"train": None, "val": self.val_tasks, "test": self.test_tasks}

    @staticmethod
    def _draw(rng: np.random.Generator) -> dict[str, Any]:
        return {
            "amplitude": float(rng.uniform(*AMPLITUDE)),
            "phase": float(rng.uniform(*PHASE)),
            "data_seed": int(rng.integers(2**62)),
        }

    def _finite_task(self, split: str, index: int) -> tuple[str, dict[str, Any]]:
        rng = np.random.default_rng(derive_seed(self.seed, split, index))
        return f"{index:04d}", self._draw(rng)

    def _sample_params(self, rng: np.random.Generator, split: str) -> dict[str, Any]:
        return self._draw(rng)

    def load_task(self, task: Task) -> SupervisedData:
        task = self.check_task(task)
        p = task.params
        rng = np.random.default_rng(p["data_seed"])
        x = rng.uniform(*X_RANGE, size=(self.shots + self.query, 1))
        y = p["amplitude"] * np.sin(x - p["phase"])
        xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
        k = self.shots
        return SupervisedData(xt[:k], yt[:k], xt[k:], yt[k:], (1,), 1, loss="mse", metric="mse")

    def default_protocol(self) -> Protocol:
        return self.inner_loop_protocol(32, "mse", 0.02)
