"""The one training loop every estimator uses.

It owns what is the same for every model: device placement, mixed precision,
optimizer and learning-rate schedule, gradient clipping, early stopping with
best-weight restore, callbacks, progress, numerical checks, per-epoch
checkpoints that a later ``fit`` resumes from, and a back-off to smaller
micro-batches with gradient accumulation when the device runs out of memory.  What differs between model
families (how to compute the loss of a batch, how to score a validation set)
comes in through the backend and the ``evaluate`` function.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from typing import Any

import torch
from torch import nn

from skbig.engine import _checkpoint
from skbig.engine.callbacks import Callback, ProgressBar
from skbig.engine.data import (
    TensorData,
    TrainData,
    count_batches,
    iterate_batches,
    set_epoch,
    split_batch,
    to_device,
)
from skbig.engine.device import autocast
from skbig.exceptions import DeviceMemoryError, InvalidParameterError, NumericalError

__all__ = ["TrainingConfig", "Trainer", "OPTIMIZERS", "LR_SCHEDULES", "MIN_MICRO_BATCH_SIZE"]

OPTIMIZERS = ("adamw", "adam", "sgd")
LR_SCHEDULES = ("constant", "cosine", "onecycle")
#: Warm-up fraction of the one-cycle schedule when ``warmup`` is 0 (one-cycle always warms up).
ONECYCLE_WARMUP = 0.3


def effective_warmup(lr_schedule: str, warmup: float) -> float:
    """The fraction of the steps that warms up: ``warmup``, or one-cycle's own when it is 0."""
    return (warmup or ONECYCLE_WARMUP) if lr_schedule == "onecycle" else warmup


#: The out-of-memory back-off halves the micro-batch down to this size, then gives up.
MIN_MICRO_BATCH_SIZE = 1

Evaluate = Callable[[nn.Module, TrainData], Mapping[str, float]]


@dataclass
class TrainingConfig:
    """Every knob of the loop, resolved from the estimator's parameters."""

    max_epochs: int
    batch_size: int
    lr: float
    device: torch.device
    precision: str = "fp32"
    weight_decay: float = 0.0
    optimizer: str = "adamw"
    momentum: float = 0.9
    lr_schedule: str = "constant"
    warmup: float = 0.0
    grad_clip: float | None = 1.0
    patience: int | None = None
    num_workers: int = 0
    checkpoint_dir: str | None = None
    fingerprint: str = ""
    callbacks: Sequence[Callback] = ()
    verbose: bool = False
    seed: int = 0
    frozen: Sequence[str] = ()
    unfreeze_at: int | None = None
    backbone: Sequence[str] = ()
    backbone_lr_mult: float = 1.0
    finetune_mix: float = 1.0
    head_init: str = "random"
    #: Recorded for ``training_settings_``; the estimator splits the data before training.
    validation_fraction: float = 0.0
    class_weight: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Trainer:
    """Train ``module`` with ``backend.loss`` on ``train_data``.

    After :meth:`fit`, ``module`` holds the best weights (by validation score,
    ties broken by validation loss) when early stopping is on and there is a
    validation set, and the last weights otherwise; with ``finetune_mix`` below
    1, those moved back towards the weights training started from (WiSE-FT:
    ``start + finetune_mix * (end - start)``, every floating-point tensor of
    the state dict).  Validation scores in ``history`` are of the unmixed weights.

    When a batch does not fit in device memory (``torch.OutOfMemoryError``),
    it is run again as ``accumulation`` micro-batches of half the size whose
    gradients add up before the one optimizer step: the effective batch, the
    number of steps and the learning-rate schedule stay the same.  The
    smaller size is kept for the rest of the fit; below
    :data:`MIN_MICRO_BATCH_SIZE` a :class:`~skbig.exceptions.DeviceMemoryError`
    names the batch size.  Losses that average over samples give the same
    gradient up to rounding; batch-norm statistics see the smaller batches.
    """

    def __init__(self, config: TrainingConfig, backend: Any, evaluate: Evaluate) -> None:
        self.config = config
        self.backend = backend
        self.evaluate = evaluate
        self.callbacks: list[Callback] = list(config.callbacks)
        if config.verbose:
            self.callbacks.append(ProgressBar())
        self.max_epochs = config.max_epochs
        self.epoch = 0
        self.steps_per_epoch = 0
        self.history: list[dict[str, Any]] = []
        self.stop_training = False
        self.module: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.best: dict[str, Any] = {"epoch": None, "score": -math.inf, "loss": math.inf}
        self._best_weights: dict[str, torch.Tensor] | None = None
        #: The weights epoch 1 starts from, kept for ``finetune_mix`` < 1.
        self._start_weights: dict[str, torch.Tensor] | None = None
        self._bad_epochs = 0
        #: The epoch whose weights the module holds when the fit ends (0: untrained or pretrained).
        self.kept_epoch: int | None = None
        self.micro_batch_size = config.batch_size
        self.accumulation = 1
        #: Loss scaling for ``precision="fp16"`` (disabled otherwise): without it, gradients
        #: below fp16's smallest value (6e-8) flush to zero and those weights stop learning.
        self.scaler: torch.amp.GradScaler | None = None

    # -- public ----------------------------------------------------------------
    def fit(
        self, module: nn.Module, train_data: TrainData, valid_data: TrainData | None
    ) -> list[dict[str, Any]]:
        """Run the loop (resuming from ``checkpoint_dir`` when it holds this fit)."""
        self.module = module.to(self.config.device)
        self._apply_freeze(module, frozen=self.config.unfreeze_at != 0)
        try:
            return self._fit(module, train_data, valid_data)
        finally:
            # Also after a crash or Ctrl-C: a later warm-start fit of the same
            # module must not inherit parameters this fit froze.
            self._apply_freeze(module, frozen=False)

    def _fit(
        self, module: nn.Module, train_data: TrainData, valid_data: TrainData | None
    ) -> list[dict[str, Any]]:
        cfg = self.config
        device = cfg.device
        train_data = _on_device(train_data, device)
        valid_data = _on_device(valid_data, device) if valid_data is not None else None
        self.steps_per_epoch = count_batches(len(train_data), cfg.batch_size)
        generator = torch.Generator().manual_seed(cfg.seed)
        optimizer = self.optimizer = self._make_optimizer(module)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._lr_factor)
        self.scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
        state = _checkpoint.load(cfg.checkpoint_dir, cfg.fingerprint) if cfg.checkpoint_dir else None
        if state is not None:
            self._restore(state, module, optimizer, scheduler, generator)
        else:
            if cfg.head_init == "linear_probe":
                self._init_head_by_linear_probe(module, train_data)
            if cfg.finetune_mix < 1:
                self._start_weights = _cpu_copy(module.state_dict())
        try:
            for cb in self.callbacks:
                cb.on_fit_begin(self)
            if self.epoch == 0 and self.best["epoch"] is None:
                self._score_pretrained(module, valid_data)
            while self.epoch < cfg.max_epochs and not self.stop_training:
                if cfg.unfreeze_at is not None and self.epoch >= cfg.unfreeze_at:
                    # ">=": a fit resumed from a checkpoint past unfreeze_at unfreezes too.
                    self._apply_freeze(module, frozen=False)
                    if self.epoch == cfg.unfreeze_at:
                        self._bad_epochs = 0  # patience counts afresh once everything trains
                record = self._run_epoch(module, train_data, valid_data, optimizer, scheduler, generator)
                self.history.append(record)
                self.epoch += 1
                self._track_best(module, record)
                stop = self._should_stop()
                for cb in self.callbacks:
                    stop = bool(cb.on_epoch_end(self, record)) or stop
                self.stop_training = self.stop_training or stop
                if cfg.checkpoint_dir is not None:
                    _checkpoint.save(
                        cfg.checkpoint_dir,
                        self._snapshot(module, optimizer, scheduler, generator),
                    )
        finally:
            # Whatever ended the fit (the last epoch, early stopping, Ctrl-C, a failing
            # callback, a numerical fault), the weights kept are those kept_epoch names.
            self.kept_epoch = self._restore_best(module)
            # Gradients would otherwise stay attached to the fitted module (and on the GPU).
            optimizer.zero_grad(set_to_none=True)
            _release_device_memory(device)
            for cb in self.callbacks:
                cb.on_fit_end(self)
        self._mix_with_start(module)
        return self.history

    def _init_head_by_linear_probe(self, module: nn.Module, train_data: TrainData) -> None:
        """Fit the fresh head as a logistic regression on the pretrained features (LP-FT)."""
        from skbig.engine._probe import init_head_by_linear_probe

        cfg = self.config
        head = self.backend.classifier_head(module)
        if head is None:
            raise InvalidParameterError(
                f"head_init='linear_probe' is not supported by backend {self.backend.name!r} "
                "(it names no classifier_head()); use head_init='random'"
            )

        def head_inputs(module: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
            with autocast(cfg.device, cfg.precision):
                return self.backend.head_inputs(module, batch)  # type: ignore[no-any-return]

        init_head_by_linear_probe(
            module,
            head,
            head_inputs,
            train_data,
            batch_size=cfg.batch_size,
            device=cfg.device,
            class_weight=cfg.class_weight,
            num_workers=cfg.num_workers,
        )

    # -- one epoch -----------------------------------------------------------------
    def _run_epoch(self, module, train_data, valid_data, optimizer, scheduler, generator):  # type: ignore[no-untyped-def]
        cfg = self.config
        start = time.perf_counter()
        module.train()
        _hold_frozen_batch_norm(module)
        total, count = torch.zeros((), device=cfg.device), 0
        class_weight = cfg.class_weight.to(cfg.device) if cfg.class_weight is not None else None
        set_epoch(train_data, self.epoch)
        batches = iterate_batches(
            train_data, cfg.batch_size, shuffle=True, generator=generator, num_workers=cfg.num_workers
        )
        for index, batch in enumerate(batches):
            batch = to_device(batch, cfg.device)
            loss = self._run_batch_with_backoff(module, batch, index, optimizer, class_weight)
            self._step(module, optimizer, scheduler, index)
            n = _batch_len(batch)
            total += loss.detach() * n
            count += n
            if self.callbacks:
                for cb in self.callbacks:
                    cb.on_batch_end(self, batch_index=index, loss=float(loss.detach()))
        record: dict[str, Any] = {
            "epoch": self.epoch + 1,
            "train_loss": float(total) / max(count, 1),
            "lr": _head_lr(optimizer),
        }
        if self.accumulation > 1:  # the out-of-memory back-off kicked in
            record["micro_batch_size"] = self.micro_batch_size
            record["accumulation"] = self.accumulation
        if valid_data is not None and len(valid_data):
            module.eval()
            with torch.inference_mode(), autocast(cfg.device, cfg.precision):
                scores = self.evaluate(module, valid_data)
            record.update({k: float(v) for k, v in scores.items()})
        record["seconds"] = time.perf_counter() - start
        return record

    def _step(self, module, optimizer, scheduler, index: int) -> None:  # type: ignore[no-untyped-def]
        """Clip, apply the gradients and advance the schedule (through the fp16 loss scaler)."""
        cfg, scaler = self.config, self.scaler
        assert scaler is not None
        if cfg.grad_clip is not None:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            norm = nn.utils.clip_grad_norm_(module.parameters(), cfg.grad_clip)
            if not scaler.is_enabled():  # with fp16 scaling, an overflow only skips this step
                self._check_finite(norm, index, what="gradient norm")
        scaler.step(optimizer)
        scaler.update()
        # The scaler skips a step whose scaled gradients overflowed (often the first, while it
        # finds its scale) and the schedule advances anyway; torch checks the order on the
        # schedule's first step only.  Only there: catch_warnings resets the "once" registry.
        first_scaled = scaler.is_enabled() and scheduler._step_count == 1
        with _quiet_scheduler_order() if first_scaled else contextlib.nullcontext():
            scheduler.step()

    # -- out-of-memory back-off -------------------------------------------------------------
    def _run_batch_with_backoff(self, module, batch, index, optimizer, class_weight) -> torch.Tensor:  # type: ignore[no-untyped-def]
        """Leave the gradient of ``batch`` in ``.grad`` and return its loss, halving micro-batches on OOM."""
        while True:
            try:
                return self._forward_backward(module, batch, index, optimizer, class_weight)
            except torch.OutOfMemoryError as exc:
                if self.micro_batch_size <= MIN_MICRO_BATCH_SIZE:
                    optimizer.zero_grad(set_to_none=True)
                    raise DeviceMemoryError(
                        f"out of memory on {self.config.device} at epoch {self.epoch + 1}, batch {index}, "
                        f"even with micro-batches of {self.micro_batch_size} sample(s) (batch_size="
                        f"{self.config.batch_size}); use a smaller model, shorter inputs, "
                        "precision='bf16', or free the device"
                    ) from exc
            # Freed outside the ``except`` block, whose traceback pins the failed step's activations.
            optimizer.zero_grad(set_to_none=True)
            _release_device_memory(self.config.device)
            self.micro_batch_size = max(self.micro_batch_size // 2, MIN_MICRO_BATCH_SIZE)
            self.accumulation = math.ceil(self.config.batch_size / self.micro_batch_size)

    def _forward_backward(self, module, batch, index, optimizer, class_weight) -> torch.Tensor:  # type: ignore[no-untyped-def]
        cfg = self.config
        n = _batch_len(batch)
        optimizer.zero_grad(set_to_none=True)
        # The usual case: one forward and backward pass.  A batch may exceed batch_size by
        # one sample (iterate_batches merges a last batch of one into it); only an
        # out-of-memory back-off (micro_batch_size below batch_size) splits batches.
        if self.micro_batch_size >= min(n, cfg.batch_size):
            with autocast(cfg.device, cfg.precision):
                loss = self.backend.loss(module, batch, class_weight=class_weight)
            self._check_finite(loss, index)
            self._scaled(loss).backward()
            return loss.detach()
        total = torch.zeros((), device=cfg.device)
        for part in split_batch(batch, self.micro_batch_size):
            share = _batch_len(part) / n  # weight of a per-sample mean within the whole batch
            with autocast(cfg.device, cfg.precision):
                loss = self.backend.loss(module, part, class_weight=class_weight)
            self._check_finite(loss, index)
            self._scaled(loss * share).backward()
            total += loss.detach().float() * share
        return total

    def _scaled(self, loss: torch.Tensor) -> torch.Tensor:
        return self.scaler.scale(loss) if self.scaler is not None else loss

    def _check_finite(self, value: torch.Tensor, index: int, what: str = "loss") -> None:
        if not torch.isfinite(value).all():
            raise NumericalError(
                f"training {what} became {float(value.detach())} at epoch {self.epoch + 1}, batch {index}; "
                "the weights from before that step were kept. Lower lr, enable grad_clip "
                "or check the inputs for extreme values."
            )

    # -- early stopping --------------------------------------------------------------
    def _track_best(self, module: nn.Module, record: Mapping[str, Any]) -> None:
        score = record.get("valid_score")
        if score is None:
            return
        loss = record.get("valid_loss", math.inf)
        if score > self.best["score"] or (score == self.best["score"] and loss < self.best["loss"]):
            self.best = {"epoch": record["epoch"], "score": score, "loss": loss}
            self._best_weights = _cpu_copy(module.state_dict())
            self._bad_epochs = 0
        else:
            self._bad_epochs += 1

    def _score_pretrained(self, module: nn.Module, valid_data: TrainData | None) -> None:
        """Score the untrained module as "epoch 0" when the backend asks for it.

        A backend whose pretrained model already predicts (zero-shot speech
        recognition, say) sets ``evaluate_before_training``: then early stopping
        keeps the pretrained weights unless a trained epoch scores better, so
        fine-tuning on a few examples can never end worse on the validation split
        than not training at all.  Not part of ``history`` (no training loss).
        """
        cfg = self.config
        wanted = getattr(self.backend, "evaluate_before_training", False)
        if not wanted or cfg.patience is None or cfg.max_epochs < 1 or not valid_data:
            return
        module.eval()
        with torch.inference_mode(), autocast(cfg.device, cfg.precision):
            scores = self.evaluate(module, valid_data)
        self._track_best(module, {"epoch": 0, **{k: float(v) for k, v in scores.items()}})

    def _should_stop(self) -> bool:
        """Out of patience, but never before the frozen parameters have trained for an epoch."""
        cfg = self.config
        if cfg.unfreeze_at is not None and self.epoch <= cfg.unfreeze_at < cfg.max_epochs:
            return False
        return cfg.patience is not None and self._bad_epochs >= cfg.patience

    def _restore_best(self, module: nn.Module) -> int:
        """Load the best epoch's weights when early stopping is on; return the epoch now in ``module``.

        Without early stopping the last weights stay: the last completed epoch's
        (after an interruption, part way into the next one).
        """
        if self.config.patience is not None and self._best_weights is not None:
            module.load_state_dict(self._best_weights)
            return int(self.best["epoch"])
        return self.epoch

    def _mix_with_start(self, module: nn.Module) -> None:
        """WiSE-FT: move the trained weights ``1 - finetune_mix`` of the way back to the start."""
        start, mix = self._start_weights, self.config.finetune_mix
        if start is None or mix >= 1:
            return
        mixed: set[tuple[int, tuple[int, ...]]] = set()
        with torch.no_grad():
            for name, value in module.state_dict().items():
                # Tied weights (Whisper's token embedding and output projection) are one
                # tensor under two names: mixing it twice would apply 1 - mix squared.
                key = (value.data_ptr(), tuple(value.shape))
                if value.is_floating_point() and key not in mixed:
                    mixed.add(key)
                    value.lerp_(start[name].to(value.device, value.dtype), 1.0 - mix)

    # -- optimisation ------------------------------------------------------------------
    def _make_optimizer(self, module: nn.Module) -> torch.optim.Optimizer:
        cfg = self.config
        groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
        for name, param in module.named_parameters():
            is_backbone = any(fnmatch(name, p) for p in cfg.backbone)
            decays = param.ndim >= 2
            groups.setdefault((is_backbone, decays), []).append(param)
        param_groups = [
            {
                "params": params,
                "lr": cfg.lr * (cfg.backbone_lr_mult if is_backbone else 1.0),
                "weight_decay": cfg.weight_decay if decays else 0.0,
                "is_backbone": is_backbone,
            }
            for (is_backbone, decays), params in sorted(groups.items())
        ]
        if cfg.optimizer in ("adamw", "adam"):
            cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
            if _fused_supported(module, cfg.device):
                # One fused kernel per step instead of a loop over tensors: several
                # times faster for large embedding tables, same update rule.
                return cls(param_groups, lr=cfg.lr, fused=True)
            return cls(param_groups, lr=cfg.lr)
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(param_groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
        raise InvalidParameterError(f"optimizer must be one of {OPTIMIZERS}, got optimizer={cfg.optimizer!r}")

    def _lr_factor(self, step: int) -> float:
        """Multiplier of the base lr at optimisation step ``step`` (per-step schedule)."""
        cfg = self.config
        total = max(self.steps_per_epoch * cfg.max_epochs, 1)
        # Whole steps (under one step is no warm-up); the same rule training_settings_ records.
        warmup_steps = int(effective_warmup(cfg.lr_schedule, cfg.warmup) * total)
        if cfg.lr_schedule == "onecycle":
            if step < warmup_steps:
                return 0.04 + 0.96 * step / warmup_steps
            progress = (step - warmup_steps) / max(total - warmup_steps, 1)
            return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if cfg.lr_schedule == "cosine":
            progress = (step - warmup_steps) / max(total - warmup_steps, 1)
            return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        return 1.0

    def _apply_freeze(self, module: nn.Module, *, frozen: bool) -> None:
        patterns = self.config.frozen
        if not patterns:
            return
        for name, param in module.named_parameters():
            if any(fnmatch(name, p) for p in patterns):
                param.requires_grad_(not frozen)

    # -- checkpoints -----------------------------------------------------------------------
    def _snapshot(self, module, optimizer, scheduler, generator) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        return {
            "fingerprint": self.config.fingerprint,
            "epoch": self.epoch,
            "stopped": self.stop_training or self.epoch >= self.config.max_epochs,
            "model": module.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng_torch": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "rng_shuffle": generator.get_state(),
            "history": self.history,
            "best": dict(self.best),
            "best_weights": self._best_weights,
            "start_weights": self._start_weights,
            "bad_epochs": self._bad_epochs,
            "micro_batch_size": self.micro_batch_size,
            "grad_scaler": self.scaler.state_dict() if self.scaler is not None else {},
        }

    def _restore(self, state, module, optimizer, scheduler, generator) -> None:  # type: ignore[no-untyped-def]
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_torch"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        generator.set_state(state["rng_shuffle"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.best = dict(state["best"])
        self._best_weights = state["best_weights"]
        self._start_weights = state.get("start_weights")
        self._bad_epochs = int(state["bad_epochs"])
        self.micro_batch_size = int(state.get("micro_batch_size", self.config.batch_size))
        if state.get("grad_scaler") and self.scaler is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["grad_scaler"])  # the scale it had found, not 65536 again
        self.accumulation = math.ceil(self.config.batch_size / self.micro_batch_size)
        self.stop_training = bool(state["stopped"])


@contextlib.contextmanager
def _quiet_scheduler_order() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)`")
        yield


def _fused_supported(module: nn.Module, device: torch.device) -> bool:
    """Fused Adam/AdamW kernels exist for float parameters on CPU and CUDA (torch >= 2.4)."""
    version = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
    if version < (2, 4) or device.type not in ("cpu", "cuda"):
        return False
    return all(p.dtype in (torch.float32, torch.float16, torch.bfloat16) for p in module.parameters())


def _release_device_memory(device: torch.device) -> None:
    """Return cached blocks to the driver so the next fit or trial starts from a clean GPU."""
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _hold_frozen_batch_norm(module: nn.Module) -> None:
    """Keep batch-norm layers whose parameters are all frozen in eval mode.

    A frozen layer must stay as it was; in training mode batch norm would still
    overwrite its running statistics with those of each batch (Keras runs
    non-trainable batch norm in inference mode for the same reason).
    """
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            params = list(layer.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                layer.eval()


def _cpu_copy(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def _batch_len(batch: Mapping[str, Any]) -> int:
    first = batch.get("y", batch.get("x"))
    return len(first) if first is not None else 1


def _on_device(data: TrainData, device: torch.device) -> TrainData:
    """Move in-memory tensors to the GPU once instead of once per batch."""
    if isinstance(data, TensorData) and device.type != "cpu":
        return TensorData({k: v.to(device) for k, v in data.tensors.items()}, trim=data.trim)
    return data


def _head_lr(optimizer: torch.optim.Optimizer) -> float:
    """The learning rate of the parameters outside the backbone: the ``lr`` the user set."""
    groups = [g for g in optimizer.param_groups if not g.get("is_backbone")] or optimizer.param_groups
    return float(groups[0]["lr"])
