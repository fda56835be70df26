"""A deliberately broken distribution: its data depends on hidden global state."""

import itertools

import torch

from metaenvs.synthetic.sinusoid import SinusoidRegression

_counter = itertools.count()


class FlakySinusoid(SinusoidRegression):
    def load_task(self, task):
        data = super().load_task(task)
        shift = float(next(_counter))
        return type(data)(
            data.x_train + shift,
            data.y_train,
            data.x_test,
            data.y_test,
            data.input_shape,
            data.n_outputs,
            data.loss,
            data.metric,
        )


__all__ = ["FlakySinusoid", "torch"]
