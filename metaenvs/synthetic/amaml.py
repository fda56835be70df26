"""CosMixture and Alpine regression, the synthetic families of A-MAML (Li et al., AISTATS 2023).

Formulas and ranges follow the authors' released code (shib0li/Adjoint-MAML @
0b387f9, ``data/funcs.py``), for 2-D inputs ``x = (x1, x2)``:

* **CosMixture**: ``y = -c * sum_i cos(f * pi * x_i + p) - sum_i x_i**2`` with
  ``c ~ U[0.1, 1]``, phase ``p ~ U[0.5, 2]``, frequency ``f ~ U[3, 6]``, ``x ~ U[-1, 1]^2``.
* **Alpine**: ``y = sum_i |x_i * sin(x_i + pi + k_i * pi / 12) + x_i / 10|`` with
  ``k_i ~ U[-5, 5]``, ``x ~ U[-10, 10]^2``.

Where text and code disagree: the paper describes the families as shifted /
scaled versions of the classic CosMixture and Alpine benchmarks; the code uses the
parameterisations above, and its Alpine sets ``k2 = k1`` (the second parameter is
drawn but unused). We draw and use both ``k1`` and ``k2``; ``alpine_shared_shift=True``
reproduces the code's ``k2 = k1``.

Splits: 100 meta-train and 100 held-out test functions (and 20 validation ones),
fixed by the distribution's seed. Each task has ``shots`` support points and
``query`` query points drawn uniformly from the domain, and a dense test grid of
``grid x grid`` points (31 x 31 = 961, the code's meshgrid) on which the score is
reported. Inputs are standardised with the moments of the uniform domain; targets
with one scaler (mean and std) fitted on the meta-train functions only, like the
code's single ``StandardScaler`` (which the code fits on all tasks, test included).
The metric ``nrmse`` is the RMSE of these standardised targets, as in the code.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from metaenvs.core import SupervisedData, SupervisedTaskDistribution, Task
from metaenvs.protocol import Protocol
from metaenvs.seeding import derive_seed
from metaenvs.validation import positive_int

SPLIT_SIZES = {"train": 100, "val": 20, "test": 100}


def cos_mixture(x: np.ndarray, params: dict[str, float]) -> np.ndarray:
    """CosMixture of the A-MAML code, for ``x`` of shape ``(n, 2)``."""
    cos = np.cos(params["freq"] * np.pi * x + params["phase"]).sum(axis=1)
    return -params["c"] * cos - np.square(x).sum(axis=1)


def alpine(x: np.ndarray, params: dict[str, float]) -> np.ndarray:
    """Alpine of the A-MAML code with per-dimension shifts ``k1``, ``k2``."""
    shifts = np.array([params["k1"], params["k2"]]) * np.pi / 12
    return np.abs(x * np.sin(x + np.pi + shifts) + x / 10.0).sum(axis=1)


class AMAMLRegression(SupervisedTaskDistribution):
    """Base class of the A-MAML synthetic families (fixed finite splits)."""

    function: ClassVar[Any]
    domain: ClassVar[tuple[float, float]]
    param_ranges: ClassVar[dict[str, tuple[float, float]]]

    meta_defaults: ClassVar = {"leap": {"meta_lr": 0.01}}
    """Leap's default SGD meta step of 0.1 (its Omniglot setting) diverges here: the regression losses
    are larger, so is its meta-gradient (norm 41 at the first step on sinusoids); 0.01 trains."""

    renamed_kwargs: ClassVar = {"val": "query"}

    def __init__(self, shots: int = 50, query: int = 50, grid: int = 31, seed: int = 0) -> None:
        super().__init__(seed)
        self.shots = positive_int("shots", shots)
        self.query = positive_int("query", query)
        self.grid = positive_int("grid", grid)
        self._y_moments: tuple[float, float] | None = None

    def _split_sizes(self) -> dict[str, int | None]:
        return dict(SPLIT_SIZES)

    def _draw_params(self, rng: np.random.Generator) -> dict[str, float]:
        return {name: float(rng.uniform(lo, hi)) for name, (lo, hi) in self.param_ranges.items()}

    def _finite_task(self, split: str, index: int) -> tuple[str, dict[str, Any]]:
        rng = np.random.default_rng(derive_seed(self.seed, split, index))
        return f"{index:04d}", {**self._draw_params(rng), "data_seed": int(rng.integers(2**62))}

    def _raw(self, params: dict[str, Any]) -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng(params["data_seed"])
        lo, hi = self.domain
        x_support = rng.uniform(lo, hi, size=(self.shots, 2))
        x_query = rng.uniform(lo, hi, size=(self.query, 2))
        axis = np.linspace(lo, hi, self.grid)
        x_grid = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
        f = type(self).function
        return x_support, f(x_support, params), x_query, f(x_query, params), x_grid, f(x_grid, params)

    def y_moments(self) -> tuple[float, float]:
        """Mean and std of the targets over the meta-train functions (one scaler for all tasks)."""
        if self._y_moments is None:
            ys = np.concatenate([np.concatenate(self._raw(t.params)[1::2]) for t in self.tasks("train")])
            self._y_moments = (float(ys.mean()), float(ys.std()))
        return self._y_moments

    def load_task(self, task: Task) -> SupervisedData:
        task = self.check_task(task)
        xs, ys, xq, yq, xg, yg = self._raw(dict(task.params))
        lo, hi = self.domain
        x_mean, x_std = (lo + hi) / 2, (hi - lo) / np.sqrt(12.0)
        y_mean, y_std = self.y_moments()

        def tx(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor((x - x_mean) / x_std, dtype=torch.float32)

        def ty(y: np.ndarray) -> torch.Tensor:
            return torch.as_tensor((y[:, None] - y_mean) / y_std, dtype=torch.float32)

        return SupervisedData(
            tx(xs),
            ty(ys),
            tx(xg),
            ty(yg),
            (2,),
            1,
            loss="mse",
            metric="nrmse",
            x_query=tx(xq),
            y_query=ty(yq),
        )

    def default_protocol(self) -> Protocol:
        return self.inner_loop_protocol(200, "nrmse", 0.01, seeds=(0, 1, 2, 3, 4))


class CosMixture(AMAMLRegression):
    """A-MAML's 2-D CosMixture regression family."""

    function = staticmethod(cos_mixture)
    domain = (-1.0, 1.0)
    param_ranges: ClassVar = {"c": (0.1, 1.0), "phase": (0.5, 2.0), "freq": (3.0, 6.0)}
    default_model: ClassVar = {"type": "mlp", "hidden": [32, 32], "activation": "tanh"}


class Alpine(AMAMLRegression):
    """A-MAML's 2-D Alpine regression family.

    Args:
        alpine_shared_shift: Use ``k2 = k1`` as the released code does.
    """

    function = staticmethod(alpine)
    domain = (-10.0, 10.0)
    param_ranges: ClassVar = {"k1": (-5.0, 5.0), "k2": (-5.0, 5.0)}
    default_model: ClassVar = {"type": "mlp", "hidden": [32, 32], "activation": "tanh"}

    def __init__(
        self,
        shots: int = 50,
        query: int = 50,
        grid: int = 31,
        alpine_shared_shift: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(shots=shots, query=query, grid=grid, seed=seed)
        self.alpine_shared_shift = bool(alpine_shared_shift)

    def _draw_params(self, rng: np.random.Generator) -> dict[str, float]:
        params = super()._draw_params(rng)
        if self.alpine_shared_shift:
            params["k2"] = params["k1"]
        return params
