"""Step clocks: steady-state training throughput measured the same way for every loop.

Why: a throughput comparison is only fair when both loops are timed over the
same work and their warm-up is left out in the same way.  Each contender
trains two epochs over the same ``N = steps_per_epoch * batch_size`` samples
and records a timestamp after every optimisation step; the first epoch is
warm-up (allocator, kernels, caches) and the figure is ``N`` divided by the
time from the end of the first epoch to the end of the second.  So every loop
is timed over exactly the same samples, including whatever it does between
epochs.  On a GPU the clock synchronises before each timestamp.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from skbig.engine.callbacks import Callback

__all__ = ["StepClock", "cuda_sync", "steady_samples_per_second", "trainer_clock"]

#: Every contender trains this many epochs; all but the last are warm-up.
EPOCHS = 2


def cuda_sync() -> Callable[[], None] | None:
    """``torch.cuda.synchronize`` when CUDA is in use, else None (nothing to wait for on a CPU)."""
    import torch

    return torch.cuda.synchronize if torch.cuda.is_available() else None


class StepClock(Callback):
    """skbig callback: a timestamp after every optimisation step."""

    def __init__(self, sync: Callable[[], None] | None = None) -> None:
        self.sync = sync
        self.times: list[float] = []

    def tick(self) -> None:
        """Record one step (also what a hand-written loop calls after ``optimizer.step()``)."""
        if self.sync is not None:
            self.sync()
        self.times.append(time.perf_counter())

    def on_batch_end(self, trainer: Any, *, batch_index: int, loss: float) -> None:
        self.tick()


def trainer_clock(sync: Callable[[], None] | None = None) -> Any:
    """A ``transformers.TrainerCallback`` with a :class:`StepClock` inside (``.clock``)."""
    from transformers import TrainerCallback

    class TrainerStepClock(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.clock = StepClock(sync)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.clock.tick()

    return TrainerStepClock()


def steady_samples_per_second(times: list[float], steps_per_epoch: int, samples_per_epoch: int) -> float:
    """Samples per second over the last epoch, from per-step timestamps.

    Raises
    ------
    RuntimeError
        If the clock did not see ``EPOCHS * steps_per_epoch`` steps (the loop
        stopped early, or its epochs were not ``steps_per_epoch`` long).
    """
    expected = EPOCHS * steps_per_epoch
    if len(times) != expected:
        raise RuntimeError(
            f"the step clock saw {len(times)} optimisation steps, expected {expected} "
            f"({EPOCHS} epochs of {steps_per_epoch}); the loops did not do the same work"
        )
    start = times[(EPOCHS - 1) * steps_per_epoch - 1]
    return samples_per_epoch / (times[-1] - start)
