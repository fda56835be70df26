"""Run the tasks of a meta-batch in lockstep: one inner step of each task in turn.

Agents with a ``learn_steps`` generator (``SupervisedAgent``) are advanced
round-robin in the calling thread by :func:`run_cooperatively`. For agents whose
inner loop cannot pause (SB3's ``learn``), :class:`Lockstep` threads are used:

:class:`Lockstep` runs each task's ``learn`` in its own thread on its own agent
replica and passes a baton round-robin at every ``on_step_end``: exactly one
thread runs at any time, in a fixed order, so the run is deterministic.

At each hand-over the runner saves the running thread's global torch and NumPy
generator states and restores the next thread's, so every task draws exactly the
numbers it would draw running alone; the caller's global states are restored at
the end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np
import torch

from agents.hooks import Hook, StepEndContext


def run_cooperatively(steppers: Sequence[Generator[Any, None, Any]]) -> list[Any]:
    """Advance generators round-robin, one inner step each, until all return; their return values."""
    results: list[Any] = [None] * len(steppers)
    active = list(range(len(steppers)))
    while active:
        for index in list(active):
            try:
                next(steppers[index])
            except StopIteration as done:
                results[index] = done.value
                active.remove(index)
    return results


class _Aborted(Exception):
    """Raised in the other threads when one task failed, to unwind them."""


class Lockstep(Hook):
    """Round-robin baton over ``n`` jobs; also the hook that yields the baton at every step end."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._cond = threading.Condition()
        self._turn = 0
        self._done = [False] * n
        self._rng: list[tuple[torch.Tensor, Any] | None] = [None] * n
        self._error: BaseException | None = None
        self._slot = threading.local()

    def run(self, jobs: Sequence[Callable[[], Any]]) -> list[Any]:
        """Run ``jobs`` (one per slot) in lockstep; return their results in order."""
        caller_rng = (torch.random.get_rng_state(), np.random.get_state())
        results: list[Any] = [None] * self.n
        threads = [
            threading.Thread(target=self._worker, args=(i, jobs[i], results), daemon=True)
            for i in range(self.n)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        torch.random.set_rng_state(caller_rng[0])
        np.random.set_state(caller_rng[1])
        if self._error is not None:
            raise self._error
        return results

    def _worker(self, slot: int, job: Callable[[], Any], results: list[Any]) -> None:
        self._slot.index = slot
        self._wait_for_turn(slot)
        try:
            if self._error is None:
                results[slot] = job()
        except _Aborted:
            pass
        except BaseException as exc:  # handed to the caller of run()
            with self._cond:
                self._error = self._error or exc
        finally:
            with self._cond:
                self._done[slot] = True
                self._pass_turn(slot)

    def _wait_for_turn(self, slot: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._turn == slot)
            state = self._rng[slot]
        if state is not None:
            torch.random.set_rng_state(state[0])
            np.random.set_state(state[1])

    def _pass_turn(self, slot: int) -> None:
        """Give the baton to the next unfinished slot (caller holds the condition)."""
        for offset in range(1, self.n + 1):
            nxt = (slot + offset) % self.n
            if not self._done[nxt]:
                self._turn = nxt
                break
        self._cond.notify_all()

    def on_step_end(self, ctx: StepEndContext) -> None:
        slot = self._slot.index
        self._rng[slot] = (torch.random.get_rng_state(), np.random.get_state())
        with self._cond:
            self._pass_turn(slot)
        self._wait_for_turn(slot)
        if self._error is not None:
            raise _Aborted


def current_slot(lockstep: Lockstep | None) -> int:
    """Slot of the calling thread (0 outside a lockstep run)."""
    return 0 if lockstep is None else int(getattr(lockstep._slot, "index", 0))
