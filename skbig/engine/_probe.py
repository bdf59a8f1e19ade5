"""Linear-probe initialisation of a classifier's fresh head (the "LP" of LP-FT).

A pretrained backbone with a randomly initialised head starts fine-tuning
with large, uninformed gradients flowing back from the head into features
that were already good; on a few hundred examples that distorts the features
more than it adapts them (Kumar et al., 2022, "Fine-Tuning can Distort
Pretrained Features and Underperform Out-of-Distribution").  Fitting the head
first as a logistic regression on the frozen features, then fine-tuning
everything from there, avoids it.

:func:`init_head_by_linear_probe` does the first step for any backend that
names its head (``backend.classifier_head(module)``), reading what the head
receives in eval mode (no dropout, no augmentation inside the network).
Augmentation that the data itself applies (lazily decoded image files) is
kept: the probe reads the views that the first epoch trains on.  By default
``backend.head_inputs`` captures that with a forward pre-hook
(:func:`capture_head_inputs`), so most backends need no "features" method.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from skbig.engine.data import TrainData, iterate_batches, to_device
from skbig.exceptions import InvalidParameterError

__all__ = ["PROBE_C", "capture_head_inputs", "fit_logistic_regression", "init_head_by_linear_probe"]

#: Inverse L2 strength of the probe: the objective of scikit-learn's ``LogisticRegression(C=1.0)``.
PROBE_C = 1.0


def fit_logistic_regression(
    features: torch.Tensor,
    targets: torch.Tensor,
    n_classes: int,
    *,
    class_weight: torch.Tensor | None = None,
    C: float = PROBE_C,
    max_iter: int = 500,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression by L-BFGS, in float64.

    Minimises ``C * sum_i w[y_i] * CE_i + ||W||^2 / 2`` (intercept not
    penalised), scikit-learn's ``LogisticRegression(C=C)`` objective,
    divided by ``C * n`` for conditioning: a softmax over ``n_classes``
    scores, or for two classes one weight vector whose score ``z`` becomes
    the pair ``(-z/2, z/2)``, so the probabilities match scikit-learn's.

    Parameters
    ----------
    features : torch.Tensor of shape (n, d)
    targets : torch.Tensor of shape (n,)
        Class indices in ``[0, n_classes)``.
    n_classes : int
    class_weight : torch.Tensor of shape (n_classes,), optional
        Per-class weights of the loss terms.
    C : float, default=PROBE_C
        Inverse regularisation strength.
    max_iter : int, default=500
        L-BFGS iterations at most.

    Returns
    -------
    weight : torch.Tensor of shape (n_classes, d)
    bias : torch.Tensor of shape (n_classes,)
    """
    x = features.detach().to("cpu", torch.float64)
    y = targets.detach().to("cpu", torch.long)
    n, d = x.shape
    sample_weight = torch.ones(n, dtype=x.dtype)
    if class_weight is not None:
        sample_weight = class_weight.detach().to("cpu", torch.float64)[y]
    # Two classes: one vector w with scores (-z/2, z/2), z = w.x + b, as scikit-learn fits
    # them (a free 2-row softmax would be penalised half as much for the same model).
    rows = 1 if n_classes == 2 else n_classes
    weight = torch.zeros(rows, d, dtype=x.dtype, requires_grad=True)
    bias = torch.zeros(rows, dtype=x.dtype, requires_grad=True)
    penalty = 1.0 / (2.0 * C * n)

    def scores() -> torch.Tensor:
        z = x @ weight.T + bias
        return torch.cat([-z / 2, z / 2], dim=1) if n_classes == 2 else z

    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-6,
        tolerance_change=1e-10,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        losses = torch.nn.functional.cross_entropy(scores(), y, reduction="none")
        loss = (sample_weight * losses).sum() / n + penalty * (weight * weight).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(objective)
    weight, bias = weight.detach(), bias.detach()
    if n_classes == 2:
        return torch.cat([-weight / 2, weight / 2]), torch.cat([-bias / 2, bias / 2])
    return weight, bias


def capture_head_inputs(
    module: nn.Module,
    head: nn.Module,
    forward: Callable[[nn.Module, Mapping[str, Any]], Any],
    batch: Mapping[str, Any],
) -> torch.Tensor:
    """What ``head`` receives while ``forward(module, batch)`` runs, ``(n, d)`` on the CPU.

    Read with a forward pre-hook, so any backend whose forward calls its head
    once on the whole batch, in batch order, gets the probe for free; a
    backend that splits or reorders a batch overrides ``head_inputs``.

    Raises
    ------
    InvalidParameterError
        If the head is never called, or reads a different number of rows
        than the batch holds.
    """
    captured: list[torch.Tensor] = []

    def keep_input(_: nn.Module, args: tuple[Any, ...]) -> None:
        captured.append(args[0].detach().float().flatten(1).cpu())

    handle = head.register_forward_pre_hook(keep_input)
    try:
        forward(module, batch)
    finally:
        handle.remove()
    n = len(batch["y"]) if "y" in batch else None
    if len(captured) != 1 or (n is not None and len(captured[0]) != n):
        raise InvalidParameterError(
            "head_init='linear_probe' reads the head's input during the forward pass, but the head "
            f"ran {len(captured)} time(s) for one batch; a backend whose forward does not call "
            "classifier_head() exactly once on the whole batch must override head_inputs()"
        )
    return captured[0]


def init_head_by_linear_probe(
    module: nn.Module,
    head: nn.Linear,
    head_inputs: Callable[[nn.Module, Mapping[str, Any]], torch.Tensor],
    data: TrainData,
    *,
    batch_size: int,
    device: torch.device,
    class_weight: torch.Tensor | None = None,
    num_workers: int = 0,
) -> None:
    """Replace ``head``'s weights with a logistic regression fitted on what it reads.

    Parameters
    ----------
    module : torch.nn.Module
        The network; put in eval mode (no dropout, no augmentation inside the
        network) for the pass over ``data``.
    head : torch.nn.Linear
        The final layer of ``module``, producing the ``n_classes`` scores.
    head_inputs : callable
        ``head_inputs(module, batch)``: the ``(n, d)`` rows ``head`` reads
        for ``batch``, in batch order (the backend's ``head_inputs``).
    data : TrainData
        The training data; every batch holds the class indices (below
        ``head.out_features``) as ``"y"``.
    batch_size, device, class_weight, num_workers
        As in training.
    """
    features: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    module.eval()
    with torch.inference_mode():
        for batch in iterate_batches(data, batch_size, shuffle=False, num_workers=num_workers):
            batch = to_device(batch, device)
            features.append(head_inputs(module, batch).float().cpu())
            targets.append(batch["y"].cpu())
    weight, bias = fit_logistic_regression(
        torch.cat(features), torch.cat(targets), head.out_features, class_weight=class_weight
    )
    with torch.no_grad():
        head.weight.copy_(weight.to(head.weight.dtype))
        if head.bias is not None:
            head.bias.copy_(bias.to(head.bias.dtype))
