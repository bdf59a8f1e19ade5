"""Speech recognition in a few lines: fit on spoken digits, transcribe, score, save and reload.

Trains the built-in ``ctc`` backend from scratch on the 60 bundled clips of
two speakers and transcribes a third speaker it has never heard.  Sixty clips
are far too few for good accuracy (expect a WER around 0.5); on the full
Free Spoken Digit Dataset the defaults reach about 0.1, see
``benchmarks/speech_fsdd.py``.  Run: ``.venv/bin/python examples/speech_quickstart.py``
(about a minute on a laptop CPU).
"""

import soundfile as sf

import skbig
from skbig.datasets import load_fsdd_sample
from skbig.metrics import cer, wer

paths, words = load_fsdd_sample()  # 8 kHz WAV files and the digit spoken ("zero" ... "nine")
train = [i for i, p in enumerate(paths) if "_theo_" not in p]
test = [i for i, p in enumerate(paths) if "_theo_" in p]

# 60 clips are too few to hold a validation split out of, so train a fixed number of epochs.
asr = skbig.SpeechRecognizer(max_epochs=80, batch_size=8, validation_fraction=0.0, random_state=0, verbose=1)
asr.fit([paths[i] for i in train], [words[i] for i in train])
print("alphabet learned from the transcripts:", "".join(asr.alphabet_))

predictions = asr.predict([paths[i] for i in test])
references = [words[i] for i in test]
print(f"unseen speaker: WER {wer(references, predictions):.3f}, CER {cer(references, predictions):.3f}")
print("first predictions:", predictions[:5])

# Arrays work too; say at which rate they were recorded, and skbig resamples them.
waveform, rate = sf.read(paths[test[0]], dtype="float32")
print("from an array:", asr.set_params(sample_rate=rate).predict([waveform]))
print("with beam search:", asr.set_params(beam_size=8).predict([waveform]))

path = asr.save("digits.skbig")
assert skbig.load(path).predict([paths[i] for i in test]) == asr.predict([paths[i] for i in test])
print(f"saved and reloaded {path}")
path.unlink()
