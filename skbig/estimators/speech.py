"""SpeechRecognizer: audio clips in, transcripts out."""

from __future__ import annotations

import numbers
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.utils import Tags

from skbig.backends.base import Backend, TaskSpec
from skbig.data.audio import _array_to_float, check_pcm_width
from skbig.data.text import check_texts
from skbig.engine.data import TrainData, iterate_batches, to_device
from skbig.estimators.base import TRAINING_FALLBACKS, SkbigEstimator
from skbig.exceptions import InputTypeError, InvalidInputError, InvalidParameterError
from skbig.metrics import edit_distance, wer

__all__ = ["SpeechRecognizer", "normalize_transcript"]

_ACCEPTED = "a 1-D waveform array (with sample_rate), a path to a WAV/FLAC/OGG file, or the file's bytes"
_MAX_CHANNELS = 16
# Float samples beyond this are not audio in [-1, 1] but unscaled PCM (16-bit values stored as
# floats reach the hundreds even in quiet speech): a level-dependent front end such as Whisper's
# log-mel transcribes such input as garbage.  The headroom allows a mix that clips a little.
_MAX_FLOAT_AMPLITUDE = 2.0
_APOSTROPHES = "'\u2019\u02bc\u2018"
_WHITESPACE = re.compile(r"\s+")


def normalize_transcript(text: str) -> str:
    """Lowercase ``text`` and remove punctuation, in any script.

    Apostrophes are deleted (``"don't"`` -> ``"dont"``); every other Unicode
    punctuation character (category ``P*``, e.g. ``,`` ``-`` ``。`` ``¿``)
    becomes a space; whitespace runs collapse to one space.  Letters, digits
    and symbols such as ``$`` are kept.  This is what ``normalize_text=True``
    applies to transcripts; apply it to references before scoring elsewhere.

    Parameters
    ----------
    text : str
        A transcript.

    Returns
    -------
    str
        The normalised transcript (NFC form).

    Examples
    --------
    >>> normalize_transcript("Don't STOP, ¡Señor! 你好。")
    'dont stop señor 你好'
    """
    text = unicodedata.normalize("NFC", text).lower()
    text = "".join(
        "" if c in _APOSTROPHES else " " if unicodedata.category(c).startswith("P") else c for c in text
    )
    return _WHITESPACE.sub(" ", text).strip()


def _canonical(text: str) -> str:
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


@dataclass(kw_only=True, eq=False, repr=False)
class SpeechRecognizer(SkbigEstimator):
    """Transcribe speech with a neural backend, the scikit-learn way.

    Takes every parameter of :class:`skbig.estimators.base.SkbigEstimator`.
    The default ``ctc`` backend trains from scratch: log-mel features,
    convolutional subsampling, a bidirectional GRU and CTC over the
    characters of the training transcripts (any script) and their frequent
    merges, with tempo, vocal-tract-length, reverberation, noise and
    SpecAugment augmentation; see :mod:`skbig.backends.ctc`.  Each epoch is
    scored on the held-out ``validation_fraction`` with ``valid_score = 1 -
    CER`` of greedy decoding (1 - token error rate for backends that cannot
    turn token ids back into text) and ``valid_loss`` = the CTC loss, and
    early stopping (patience 10 for ``ctc``) keeps the best epoch.

    Parameters
    ----------
    backend : str, default="ctc"
        A ``speech-recognition`` backend (see :func:`skbig.list_backends`).
    lr_schedule : {"onecycle", "cosine", "constant"} or None, default=None
        ``None``: the backend's recommendation, else ``"onecycle"`` (unlike
        the classifiers' ``"constant"``: speech models trained from scratch
        need the warm-up and end better with the annealing).
    sample_rate : int, optional
        Rate in Hz of waveform arrays in ``X``; required when ``X`` holds
        arrays, ignored for files and bytes (they carry their own rate).
        Every clip is resampled (band-limited) to the backend's rate.
    normalize_text : bool, default=False
        Lowercase transcripts and strip punctuation (see
        :func:`normalize_transcript`) before learning them; ``score`` applies
        the same to its references.  Predictions are normalised the same way.
    beam_size : int, default=1
        1 decodes greedily (fastest); larger values run CTC prefix beam
        search with that many prefixes, whose result is never less probable
        under the model than the greedy one.

    Attributes
    ----------
    alphabet_ : list of str or None
        Output characters learned from ``y`` (the CTC blank excluded);
        None for backends whose outputs are not characters.
    history_ : list of dict
        One record per epoch: ``epoch``, ``train_loss``, ``valid_loss``,
        ``valid_score`` (1 - CER), ``lr`` and ``seconds``.
    best_epoch_ : int
        The epoch whose weights were kept.
    training_settings_ : dict
        What the fit ran with once the settings left at ``None``/"auto" took
        the backend's recommendation: ``lr``, ``batch_size``, ``max_epochs``,
        ``lr_schedule``, ``warmup``, ``validation_fraction``, ``frozen``
        (parameter-name patterns), ``backbone_lr_mult``, ``head_init``...
    backend_ : str
        The backend actually used.
    module_ : torch.nn.Module
        The trained network.

    Notes
    -----
    ``X`` may be a list (or 1-D object array, or pandas Series) of: 1-D
    waveforms (float in [-1, 1] or integer PCM) with ``sample_rate``;
    multi-channel waveforms of shape ``(n_samples, n_channels)`` or
    ``(n_channels, n_samples)`` (the shorter axis, at most 16 long, is taken
    as channels and averaged); ``str`` or ``pathlib.Path`` to WAV, FLAC or OGG
    files (decoded lazily, in DataLoader workers when ``num_workers > 0``);
    or the bytes of such files.  A 2-D float array is read as one clip per row.
    Errors name the offending ``X[i]`` and its path; a file that cannot be
    decoded is reported when it is first read.

    Examples
    --------
    >>> from skbig import SpeechRecognizer
    >>> from skbig.datasets import load_fsdd_sample
    >>> paths, words = load_fsdd_sample()
    >>> asr = SpeechRecognizer(max_epochs=1, random_state=0,
    ...                        backend_params={"hidden_size": 32, "num_layers": 1})
    >>> asr = asr.fit(paths[:20], words[:20])
    >>> predictions = asr.predict(paths[:2])
    >>> len(predictions), type(predictions[0]).__name__
    (2, 'str')
    >>> sorted(set(words[:20])), "".join(asr.alphabet_)
    (['four', 'one', 'three', 'two', 'zero'], 'efhnortuwz')
    """

    _task = "speech-recognition"
    _items_are_files = True

    _training_fallbacks: ClassVar[Mapping[str, Any]] = {**TRAINING_FALLBACKS, "lr_schedule": "onecycle"}

    backend: str = "ctc"
    lr_schedule: str | None = None
    sample_rate: int | None = None
    normalize_text: bool = False
    beam_size: int = 1

    # -- validation -------------------------------------------------------------------------
    def _check_params(self) -> None:
        super()._check_params()
        self._check_speech_params()

    def _check_speech_params(self) -> None:
        rate = self.sample_rate
        if rate is not None and (
            isinstance(rate, bool) or not isinstance(rate, numbers.Integral) or rate <= 0
        ):
            raise InvalidParameterError(
                f"sample_rate must be a positive int in Hz or None, got sample_rate={rate!r}; "
                "e.g. sample_rate=16000 for 16 kHz arrays"
            )
        beam = self.beam_size
        if isinstance(beam, bool) or not isinstance(beam, numbers.Integral) or beam < 1:
            raise InvalidParameterError(
                f"beam_size must be an int >= 1, got beam_size={beam!r}; use 1 for greedy decoding"
            )
        if not isinstance(self.normalize_text, (bool, np.bool_)):
            raise InvalidParameterError(
                f"normalize_text must be True or False, got normalize_text={self.normalize_text!r}"
            )

    def _check_X(self, X: Any, *, fitting: bool) -> list[Any]:
        items = _as_item_list(X)
        checked = [self._check_item(item, i) for i, item in enumerate(items)]
        return checked

    def _check_item(self, item: Any, index: int) -> Any:
        """Validate one clip up front; arrays come back as 1-D float32 or integer PCM."""
        if isinstance(item, torch.Tensor):
            item = item.detach().cpu().numpy()
        if isinstance(item, np.ndarray):
            return self._check_array(item, index)
        if isinstance(item, (str, os.PathLike)):
            path = os.fspath(item)
            where = f"X[{index}] ({path})"
            if not path:
                raise InvalidInputError(f"X[{index}] is an empty path; pass {_ACCEPTED}")
            if not os.path.exists(path) and os.path.islink(path):
                raise InvalidInputError(
                    f"{where} is a symbolic link that does not resolve (its target is missing, or the "
                    "links form a loop); point it at a real audio file"
                )
            if not os.path.exists(path):
                raise InvalidInputError(f"{where} does not exist; check the path and working directory")
            if os.path.isdir(path):
                raise InvalidInputError(f"{where} is a directory; pass one audio file per item")
            return item
        if isinstance(item, (bytes, bytearray, memoryview)):
            item = bytes(item)
            if not item:
                raise InvalidInputError(f"X[{index}] is empty bytes; pass the bytes of a WAV/FLAC/OGG file")
            return item
        raise InputTypeError(f"X[{index}] has type {type(item).__name__}; pass {_ACCEPTED}")

    def _check_array(self, item: np.ndarray, index: int) -> np.ndarray:
        where = f"X[{index}]"
        if self.sample_rate is None:
            raise InvalidParameterError(
                f"{where} is a waveform array, so sample_rate is required, got sample_rate=None; "
                "pass the rate it was recorded at, e.g. SpeechRecognizer(sample_rate=16000)"
            )
        if item.ndim not in (1, 2):
            raise InvalidInputError(
                f"{where} must be a 1-D waveform or a 2-D (n_samples, n_channels) array, got "
                f"shape {item.shape}; pass one clip per item of X"
            )
        if item.dtype.kind not in "fiu" or (item.dtype.kind == "u" and item.dtype != np.uint8):
            raise InputTypeError(
                f"{where} has dtype {item.dtype}, which is not audio; "
                "pass float samples in [-1, 1] or int16/int32/uint8 PCM"
            )
        if item.size == 0:
            raise InvalidInputError(f"{where} has no samples (shape {item.shape}); drop empty recordings")
        check_pcm_width(item, where)
        if item.dtype.kind == "f" and not np.isfinite(item).all():
            raise InvalidInputError(f"{where} contains NaN or inf samples; clean it, e.g. np.nan_to_num(x)")
        if item.dtype.kind == "f" and np.abs(item).max() > _MAX_FLOAT_AMPLITUDE:
            raise InvalidInputError(
                f"{where} has float samples up to {float(np.abs(item).max()):.6g}; float audio must lie in "
                "[-1, 1]: this looks like unscaled PCM (divide 16-bit PCM stored as floats by 32768, "
                "or pass it as int16)"
            )
        if item.ndim == 1:
            return item
        channel_axis = int(np.argmin(item.shape))
        if item.shape[channel_axis] > _MAX_CHANNELS or item.shape[0] == item.shape[1]:
            raise InvalidInputError(
                f"{where} has shape {item.shape}, which is not (n_samples, n_channels) or "
                f"(n_channels, n_samples) with at most {_MAX_CHANNELS} channels; pass 1-D waveforms"
            )
        as_float = _array_to_float(item.reshape(-1), where).reshape(item.shape)
        return np.ascontiguousarray(as_float.mean(axis=channel_axis, dtype=np.float32))

    def _check_transcripts(self, y: Any, n_samples: int, *, allow_empty: bool = False) -> list[str]:
        if y is None:
            raise InvalidInputError("y is required: pass one transcript (str) per clip, got y=None")
        texts = check_texts(y, name="y")
        if len(texts) != n_samples:
            raise InvalidInputError(
                f"X and y must have the same length, got {n_samples} clips in X and {len(texts)} "
                "transcripts in y; pass one transcript per clip"
            )
        cleaned = []
        for i, text in enumerate(texts):
            clean = normalize_transcript(text) if self.normalize_text else _canonical(text)
            if not clean and not allow_empty:
                why = " after normalize_text removed its punctuation" if text.strip() else ""
                raise InvalidInputError(
                    f"y[{i}] is an empty transcript{why} ({text!r}); every clip needs the text spoken "
                    "in it: drop silent clips or fix their transcripts"
                )
            cleaned.append(clean)
        return cleaned

    # -- task hooks ---------------------------------------------------------------------------
    def _prepare_targets(self, y: Any, n_samples: int, backend: Backend) -> tuple[Any, TaskSpec]:
        texts = self._check_transcripts(y, n_samples)
        backend.input_sample_rate = self.sample_rate  # type: ignore[attr-defined]
        if self.warm_start and hasattr(self, "module_"):
            previous: list[str] | None = getattr(self, "alphabet_", None)
            known = set(previous) if previous is not None else None
            # The space too: an alphabet learned from single words has none, and the
            # backend would drop it, teaching "zero one" as "zeroone".
            unseen = sorted({c for t in texts for c in t} - known) if known is not None else []
            if unseen:
                raise InvalidParameterError(
                    f"warm_start=True keeps the alphabet of the first fit, but y has new characters "
                    f"{unseen[:20]}; set warm_start=False to learn a new alphabet"
                )
        else:
            backend.fit_targets(texts)  # type: ignore[attr-defined]
        self.alphabet_ = _alphabet_of(backend)
        targets = backend.encode_targets(texts)  # type: ignore[attr-defined]
        return targets, TaskSpec(self._task, backend.output_size())  # type: ignore[attr-defined]

    def _evaluate(self, module: torch.nn.Module, data: TrainData) -> dict[str, float]:
        """Mean loss and ``1 - CER`` of greedy decoding on the validation split.

        References come back from the batch's token ids through the backend's
        ``ids_to_text`` when it has one; otherwise the rate is computed on
        tokens (``1 -`` token error rate).
        """
        backend: Any = self._backend
        to_text = getattr(backend, "ids_to_text", None)
        device = next(module.parameters()).device
        loss_sum, edits, ref_len, count = 0.0, 0, 0, 0
        for batch in iterate_batches(data, 128, shuffle=False, num_workers=self.num_workers):
            batch = to_device(batch, device)
            n = len(batch["y_lengths"])
            loss_sum += float(backend.loss(module, batch)) * n
            count += n
            hyps: list[Any] = backend.decode(module, batch, beam_size=1)
            refs: list[Any] = [ids[:k] for ids, k in zip(batch["y"].tolist(), batch["y_lengths"].tolist())]
            if to_text is not None:
                refs = [to_text(ids) for ids in refs]
                if self.normalize_text:  # as predict: a tokenizer's capitals and commas are not errors
                    hyps = [normalize_transcript(text) for text in hyps]
            else:
                hyps = backend.encode_targets(hyps)
            for ref, hyp in zip(refs, hyps):
                edits += edit_distance(ref, hyp)
                ref_len += len(ref)
        error = edits / ref_len if ref_len else 0.0
        return {"valid_loss": loss_sum / max(count, 1), "valid_score": 1.0 - error}

    # -- inference ------------------------------------------------------------------------------
    def predict(self, X: Any) -> list[str]:
        """Transcribe every clip of ``X``.

        Parameters
        ----------
        X : sequence of clips
            Waveform arrays (with ``sample_rate``), file paths or file bytes.

        Returns
        -------
        list of str
            One transcript per clip, in order.
        """
        self._check_is_fitted()
        self._check_speech_params()
        self._backend.input_sample_rate = self.sample_rate  # type: ignore[attr-defined]
        beam = int(self.beam_size)
        chunks = self._forward_all(
            X,
            lambda module, batch: self._backend.decode(module, batch, beam_size=beam),  # type: ignore[attr-defined]
        )
        texts = [text for chunk in chunks for text in chunk]
        if self.normalize_text:
            # Backends with their own vocabulary (a pretrained tokenizer) may print
            # capitals and punctuation; the promise is normalised text either way.
            texts = [normalize_transcript(text) for text in texts]
        return texts

    def score(self, X: Any, y: Any, sample_weight: None = None) -> float:
        """``1 - WER`` of the predictions for ``X`` against the transcripts ``y``.

        With ``normalize_text=True`` the references are normalised first, like
        the training transcripts.  For cross-validation on the error itself,
        use ``scoring=skbig.metrics.wer_scorer``.

        Returns
        -------
        float
            At most 1; below 0 when the predictions insert many words.
        """
        if sample_weight is not None:
            raise InvalidParameterError("SpeechRecognizer.score does not support sample_weight")
        references = self._check_transcripts(y, len(_as_item_list(X)), allow_empty=True)
        return 1.0 - wer(references, self.predict(X))

    # -- persistence --------------------------------------------------------------------------------
    def _restore_fitted(self, fitted, backend, weights) -> None:  # type: ignore[no-untyped-def]
        super()._restore_fitted(fitted, backend, weights)
        self.alphabet_ = _alphabet_of(backend)  # restored by backend.set_state

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True  # file paths
        tags.target_tags.required = True
        tags.non_deterministic = self.random_state is None
        return tags


def _alphabet_of(backend: Backend) -> list[str] | None:
    alphabet = getattr(backend, "alphabet", None)
    return list(alphabet) if alphabet is not None else None


def _as_item_list(X: Any) -> list[Any]:
    """Turn the container ``X`` into a list of clips, refusing a lone clip."""
    if isinstance(X, (str, bytes, bytearray, os.PathLike)):
        raise InputTypeError(
            f"X must be a sequence of clips, got a single {type(X).__name__}; wrap it in a list: [X]"
        )
    if hasattr(X, "to_numpy") and not isinstance(X, torch.Tensor):  # pandas Series
        X = X.to_numpy()
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    if isinstance(X, np.ndarray):
        if X.dtype != object and X.ndim == 1:
            raise InputTypeError(
                f"X is a single 1-D waveform of shape {X.shape}; wrap it in a list ([x]) to "
                "transcribe one clip"
            )
        if X.dtype == object and X.ndim != 1:
            raise InvalidInputError(
                f"X must be 1-D (one clip per item), got an object array of shape {X.shape}"
            )
        items = list(X)
    elif isinstance(X, (list, tuple)) or (hasattr(X, "__len__") and hasattr(X, "__getitem__")):
        items = list(X)
    else:
        raise InputTypeError(f"X must be a list of clips ({_ACCEPTED}), got {type(X).__name__}")
    if not items:
        raise InvalidInputError("X is empty: pass at least one clip")
    return items
