"""Hyper-parameter search with Optuna (imported on first use: ``import skbig`` stays light)."""

from __future__ import annotations

from skbig.search.optuna_search import OptunaSearchCV
from skbig.search.spaces import Categorical, Float, Int

__all__ = ["OptunaSearchCV", "Float", "Int", "Categorical"]
