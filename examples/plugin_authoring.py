"""Write a backend: a hashed bag-of-words text classifier, registered in-process and used like any other.

A backend is a class that declares its name, task and hyper-parameters and
knows how to turn inputs into tensors and build its ``nn.Module``; skbig
supplies everything else (training loop, early stopping, search, saving).
To ship it, put the class in a package with one entry point, exactly as
``plugins/skbig-toy`` does::

    # pyproject.toml of your distribution
    [project.entry-points."skbig.backends"]
    hashed_bow = "my_package.backend:HashedBagOfWords"

and test it with skbig's conformance suite::

    from skbig.testing import BackendConformance

    class TestHashedBagOfWords(BackendConformance):
        @pytest.fixture
        def backend_cls(self):
            return HashedBagOfWords

Once installed (``pip install -e .``), ``skbig plugins`` lists it and
``TextClassifier(backend="hashed_bow")`` finds it with no import.  For a quick
experiment, or in tests, ``skbig.register_backend`` does the same in-process,
as below.  Run: ``.venv/bin/python examples/plugin_authoring.py`` (seconds).
"""

import tempfile
import zlib
from pathlib import Path
from typing import Any

import torch
from sklearn.model_selection import train_test_split
from torch import nn

import skbig
from skbig.backends.base import TaskSpec, TextClassificationBackend
from skbig.data.text import tokenize
from skbig.datasets import load_sms_spam_sample
from skbig.engine.data import TensorData
from skbig.search import Categorical


class HashedBagOfWords(TextClassificationBackend):
    """Word counts hashed into a fixed number of buckets, fed to one linear layer.

    Hashing needs no vocabulary, so there is no state to learn from the
    training texts and nothing to save beyond the weights.
    """

    name = "hashed_bow"
    defaults = {"n_buckets": 4096}  # JSON values: reachable as backend_params__n_buckets
    training_defaults = {"lr": 0.05, "batch_size": 32, "max_epochs": 10}

    def make_data(self, X: Any, targets: Any = None, *, train: bool = False) -> TensorData:
        n = int(self.params["n_buckets"])
        counts = torch.zeros((len(X), n))
        for row, text in enumerate(X):
            for token in tokenize(text):
                counts[row, zlib.crc32(token.encode()) % n] += 1.0  # crc32: the same in every process
        tensors = {"x": counts / counts.sum(dim=1, keepdim=True).clamp(min=1.0)}
        if targets is not None:
            tensors["y"] = torch.as_tensor(targets, dtype=torch.long)
        return TensorData(tensors)

    def build_module(self, spec: TaskSpec) -> nn.Module:
        return nn.Linear(int(self.params["n_buckets"]), spec.n_outputs)

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        """What OptunaSearchCV searches when given no space."""
        return {"backend_params__n_buckets": Categorical([1024, 4096, 16384])}


skbig.register_backend(HashedBagOfWords)  # validates the class against the backend contract
row = {info.name: info for info in skbig.list_backends("text-classification")}["hashed_bow"]
print(f"registered {row.name!r} for {row.task} from {row.distribution}: status {row.status}")

texts, labels = load_sms_spam_sample()
X_train, X_test, y_train, y_test = train_test_split(
    texts, labels, test_size=0.2, stratify=labels, random_state=0
)
clf = skbig.TextClassifier(backend="hashed_bow", random_state=0).fit(X_train, y_train)
print(f"hashed_bow: {len(clf.history_)} epochs, test accuracy {clf.score(X_test, y_test):.3f}")
print(
    "its hyper-parameters are estimator parameters:",
    {k: v for k, v in clf.get_params(deep=True).items() if k.startswith("backend_params__")},
)

with tempfile.TemporaryDirectory() as tmp:
    path = clf.save(Path(tmp) / "hashed.skbig")  # reloading needs the backend registered (or installed)
    same = (skbig.load(path).predict(X_test) == clf.predict(X_test)).all()
    print(f"saved and reloaded with identical predictions: {same}")
