"""What a supervised task loads: its tensors and the names of its loss and metric.

(Re-exported by :mod:`metaenvs.core`, where the task contract lives.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: `import metaenvs` must not import torch (the CLI checks first)
    import torch


@dataclass(frozen=True)
class SupervisedData:
    """What a supervised task loads: tensors plus the names of its loss and metric.

    Attributes:
        x_train: Inputs the agent learns from, shape ``(n_train, *input_shape)``.
        y_train: Targets for ``x_train``.
        x_test: Held-out inputs of the same task (query / validation set).
        y_test: Targets for ``x_test``.
        input_shape: Shape of one input.
        n_outputs: Width of the model's output (classes for classification).
        loss: Name of the training loss in :mod:`metaenvs.metrics`.
        metric: Name of the reported score in :mod:`metaenvs.metrics`.
        x_query: Optional query (validation) inputs that meta-learners use for their outer loss;
            when absent, the query set is the test set.
        y_query: Targets for ``x_query``.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    input_shape: tuple[int, ...]
    n_outputs: int
    loss: str
    metric: str
    x_query: torch.Tensor | None = None
    y_query: torch.Tensor | None = None

    def query(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of the query set: the dedicated one if the task has it, else the test set."""
        if self.x_query is None or self.y_query is None:
            return self.x_test, self.y_test
        return self.x_query, self.y_query

    def to(self, dtype: torch.dtype, device: str | torch.device | None = None) -> SupervisedData:
        """Cast floating-point tensors to ``dtype`` (labels stay integer) and move all to ``device``."""

        def cast(t: torch.Tensor | None) -> torch.Tensor | None:
            if t is None:
                return None
            return t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype)

        return SupervisedData(
            cast(self.x_train),
            cast(self.y_train),
            cast(self.x_test),
            cast(self.y_test),
            self.input_shape,
            self.n_outputs,
            self.loss,
            self.metric,
            cast(self.x_query),
            cast(self.y_query),
        )
