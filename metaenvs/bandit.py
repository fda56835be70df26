"""A supervised task seen as a contextual bandit, so any RL agent can run on it.

Each episode is one step: the observation is a training input drawn with the env's
own ``np_random``; the action is a prediction; the reward is the negative loss of
that prediction (regression) or 1 for the right class and 0 otherwise
(classification).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from metaenvs.core import SupervisedData
from metaenvs.metrics import get_loss


class SupervisedBanditEnv(gym.Env):
    """One-step episodes over the training set of a :class:`SupervisedData`.

    Args:
        data: The task's tensors.
        render_mode: Only ``None`` is supported.
        action_bound: Bound of the Box action space of regression tasks.
    """

    metadata = {"render_modes": []}  # noqa: RUF012 - Gymnasium's convention

    def __init__(self, data: SupervisedData, render_mode: str | None = None, action_bound: float = 1e3):
        self.data = data
        self.render_mode = render_mode
        self._x = data.x_train.detach().to(torch.float32).numpy()
        self._y = data.y_train.detach()
        self._classification = data.loss == "cross_entropy"
        self._loss = get_loss(data.loss)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=tuple(data.input_shape), dtype=np.float32)
        if self._classification:
            self.action_space = spaces.Discrete(int(data.n_outputs))
        else:
            self.action_space = spaces.Box(
                -action_bound, action_bound, shape=(int(data.n_outputs),), dtype=np.float32
            )
        self._index = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._index = int(self.np_random.integers(len(self._x)))
        return self._x[self._index].copy(), {"index": self._index}

    def step(self, action: Any):
        target = self._y[self._index : self._index + 1]
        if self._classification:
            reward = float(int(action) == int(target.item()))
        else:
            pred = torch.as_tensor(np.asarray(action, dtype=np.float32)).reshape(1, -1).to(target.dtype)
            reward = -float(self._loss(pred, target))
        obs = self._x[self._index].copy()
        return obs, reward, True, False, {"index": self._index}
