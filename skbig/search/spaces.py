"""Search spaces: how backends declare them and how they become Optuna suggestions.

Backends declare their default space with :class:`Float`, :class:`Int` and
:class:`Categorical` (plain dataclasses, so declaring a space never imports
Optuna) or the compact tuples ``("log_float", low, high)``, ``("float", low,
high)``, ``("int", low, high)``, ``("log_int", low, high)`` and
``("categorical", [choices])``.  Users may pass any of those, Optuna
distributions, or plain lists of values (a categorical choice).  When
``"backend"`` itself is searched, each backend's own hyper-parameters are
searched only in trials that picked it (conditional parameters), under
Optuna names prefixed with the backend so that two backends' ranges never
clash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from skbig.exceptions import InvalidParameterError

__all__ = ["Float", "Int", "Categorical", "default_space", "suggest", "space_to_json", "space_from_json"]


@dataclass(frozen=True)
class Float:
    """A float between ``low`` and ``high`` (log-uniform when ``log``)."""

    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Int:
    """An int between ``low`` and ``high`` inclusive."""

    low: int
    high: int
    log: bool = False


@dataclass(frozen=True)
class Categorical:
    """One of ``choices`` (JSON values: str, int, float, bool, None)."""

    choices: tuple[Any, ...]

    def __init__(self, choices: Sequence[Any]) -> None:
        object.__setattr__(self, "choices", tuple(choices))


def _as_distribution(name: str, spec: Any) -> Any:
    """Turn one user or backend spec into an Optuna distribution."""
    import optuna.distributions as d

    if isinstance(spec, d.BaseDistribution):
        return spec
    if isinstance(spec, Float):
        return d.FloatDistribution(spec.low, spec.high, log=spec.log)
    if isinstance(spec, Int):
        return d.IntDistribution(spec.low, spec.high, log=spec.log)
    if isinstance(spec, Categorical):
        return d.CategoricalDistribution(spec.choices)
    compact = _compact_form(spec)
    if compact is not None:
        return _as_distribution(name, compact)
    if isinstance(spec, (list, tuple)) and len(spec) > 0:
        return d.CategoricalDistribution(_hashable_choices(name, spec))
    raise InvalidParameterError(
        f"search space entry {name!r} must be a non-empty list of values, skbig.search.Float/Int/"
        f"Categorical or an optuna distribution, got {spec!r}"
    )


_RANGE_KINDS = {
    "float": (Float, False),
    "log_float": (Float, True),
    "int": (Int, False),
    "log_int": (Int, True),
}


def _compact_form(spec: Any) -> Float | Int | Categorical | None:
    """Read the compact tuple form, e.g. ``("log_float", 1e-4, 1e-2)`` or ``("categorical", [...])``."""
    if not (isinstance(spec, tuple) and spec and isinstance(spec[0], str)):
        return None
    kind = spec[0]
    if kind in _RANGE_KINDS and len(spec) == 3 and all(isinstance(v, (int, float)) for v in spec[1:]):
        cls, log = _RANGE_KINDS[kind]
        return cls(spec[1], spec[2], log=log)  # type: ignore[operator,return-value]
    if kind == "categorical" and len(spec) == 2 and isinstance(spec[1], (list, tuple)):
        return Categorical(spec[1])
    return None


def _hashable_choices(name: str, values: Sequence[Any]) -> tuple[Any, ...]:
    for value in values:
        if not (value is None or isinstance(value, (str, int, float, bool))):
            raise InvalidParameterError(
                f"choices of {name!r} must be str, int, float, bool or None (Optuna stores them), "
                f"got {value!r}; search an index or a name instead"
            )
    return tuple(values)


def _skbig_step(estimator: Any) -> tuple[str, Any]:
    """The skbig estimator inside ``estimator`` and the parameter prefix that reaches it."""
    from skbig.estimators.base import SkbigEstimator

    if isinstance(estimator, SkbigEstimator):
        return "", estimator
    steps = getattr(estimator, "steps", None)
    if steps:
        name, last = steps[-1]
        prefix, inner = _skbig_step(last)
        return f"{name}__{prefix}", inner
    raise InvalidParameterError(
        f"param_distributions=None needs a skbig estimator (or a Pipeline ending in one) to take the "
        f"backend's default space from; got {type(estimator).__name__}. Pass param_distributions."
    )


def backend_space(backend_name: str, task: str, prefix: str = "") -> dict[str, Any]:
    """The search space a backend declares, with parameter names prefixed for pipelines."""
    from skbig.backends.registry import get_backend

    cls = get_backend(backend_name, task)
    return {prefix + name: spec for name, spec in cls.search_space().items()}


def default_space(estimator: Any) -> dict[str, Any]:
    """The space of the estimator's backend (``param_distributions=None``)."""
    prefix, inner = _skbig_step(estimator)
    return backend_space(inner._backend_name(), inner._task, prefix)


def suggest(trial: Any, space: Mapping[str, Any], estimator: Any) -> dict[str, Any]:
    """Sample one configuration from ``space`` with ``trial``; expand backend-conditional params."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        params[name] = _suggest(trial, name, _as_distribution(name, spec))
    backend_keys = [k for k in space if k == "backend" or k.endswith("__backend")]
    for key in backend_keys:
        prefix = key[: -len("backend")]
        _, inner = _skbig_step(estimator)
        chosen = params[key]
        for name, spec in backend_space(chosen, inner._task, prefix).items():
            if name not in space:
                optuna_name = f"{chosen}:{name}"
                params[name] = _suggest(trial, optuna_name, _as_distribution(name, spec))
    return params


def _suggest(trial: Any, name: str, dist: Any) -> Any:
    """Ask ``trial`` for ``name`` through Optuna's public suggest API."""
    import optuna.distributions as d

    if isinstance(dist, d.FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, d.IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
    return trial.suggest_categorical(name, dist.choices)


def space_to_json(space: Mapping[str, Any]) -> dict[str, str]:
    """Serialise a space (for the spec that remote workers read)."""
    from optuna.distributions import distribution_to_json

    return {name: distribution_to_json(_as_distribution(name, spec)) for name, spec in space.items()}


def space_from_json(data: Mapping[str, str]) -> dict[str, Any]:
    from optuna.distributions import json_to_distribution

    return {name: json_to_distribution(text) for name, text in data.items()}
