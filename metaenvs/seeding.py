"""Explicit randomness: every random draw in the suite comes from a generator passed in.

Seeds are derived, never drawn from global state: :func:`derive_seed` hashes a
tuple of integers (a run seed, a meta step, a task index, ...) through NumPy's
``SeedSequence``, so any part of a run can be recomputed on its own, which is what
makes resumed runs bitwise-identical.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import numpy as np
import torch

from metaenvs.errors import InvalidArgumentError


def as_generator(seed: int | np.random.Generator) -> np.random.Generator:
    """Return ``seed`` if it is a Generator, else a new ``np.random.Generator`` seeded with it."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return np.random.default_rng(int(seed))
    raise InvalidArgumentError(
        f"Expected a non-negative int seed or a numpy.random.Generator, got {seed!r}. "
        "Pass e.g. numpy.random.default_rng(0)."
    )


def derive_seed(*keys: int | str) -> int:
    """Derive a 63-bit seed from a tuple of ints and strings, independent of call order."""
    ints = [k if isinstance(k, int) else _str_key(k) for k in keys]
    for k in ints:
        if k < 0:
            raise InvalidArgumentError(f"Seed keys must be non-negative, got {keys!r}.")
    state = np.random.SeedSequence(ints).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def _str_key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def torch_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed``."""
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return generator


@contextlib.contextmanager
def scoped_global_seed(seed: int) -> Iterator[None]:
    """Seed torch's and NumPy's global generators for the duration of a block, then restore both.

    Third-party code that draws from global generators (stable-baselines3 samples
    actions from torch's and shuffles rollout minibatches with NumPy's) runs inside
    this block, so its draws are reproducible from ``seed`` and the caller's global
    state is exactly as it was afterwards.
    """
    numpy_state = np.random.get_state()
    np.random.set_state(np.random.RandomState(int(seed) % 2**32).get_state())
    try:
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(int(seed))
            yield
    finally:
        np.random.set_state(numpy_state)
