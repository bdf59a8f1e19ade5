"""``import skbig`` stays light: no optuna, no plugin, no torch until needed."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = "import json, sys, skbig; print(json.dumps(sorted(m for m in sys.modules)))"


def _modules_after_import():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(out.stdout))


def test_import_skbig_imports_neither_optuna_nor_plugins():
    modules = _modules_after_import()
    assert not any(m == "optuna" or m.startswith("optuna.") for m in modules)
    plugin_prefixes = ("skbig_", "transformers", "skbig.backends.fasttext", "skbig.backends.lstm")
    assert not [m for m in modules if m.startswith(plugin_prefixes)]
    assert "torch" not in modules


def test_public_names_resolve_lazily():
    import skbig

    assert set(skbig.__all__) >= {"TextClassifier", "list_backends", "register_backend", "load"}
    assert skbig.TextClassifier.__module__ == "skbig.estimators.text"


def test_submodules_are_reachable_after_a_bare_import():
    # The README writes ``scoring=skbig.metrics.wer_scorer`` after ``import skbig``.
    probe = (
        "import skbig; print(skbig.metrics.wer_scorer, skbig.search.OptunaSearchCV.__name__, "
        "skbig.datasets.load_sms_spam_sample.__name__, skbig.pretrained.__name__, skbig.testing.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == ["skbig.metrics.wer_scorer", "OptunaSearchCV"]
