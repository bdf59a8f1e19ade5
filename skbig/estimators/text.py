"""TextClassifier: strings in, labels out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sklearn.utils import Tags

from skbig.data.text import check_texts
from skbig.estimators._classifier import SkbigClassifier

__all__ = ["TextClassifier"]


@dataclass(kw_only=True, eq=False, repr=False)
class TextClassifier(SkbigClassifier):
    """Classify texts with a neural backend, the scikit-learn way.

    Takes every parameter of :class:`skbig.estimators.base.SkbigEstimator`
    and :class:`skbig.estimators._classifier.SkbigClassifier`; the defaults
    train the ``fasttext`` backend (word, word-bigram and character n-gram
    embeddings), which needs no pretrained weights and handles scripts
    without spaces.

    Parameters
    ----------
    backend : str, default="fasttext"
        ``"fasttext"``, ``"lstm"``, a plugin backend such as ``"minilm"``, or
        ``"auto"`` for the best installed one.

    Attributes
    ----------
    classes_ : ndarray
        The sorted class labels seen in ``fit``.
    history_ : list of dict
        One record per epoch: ``epoch``, ``train_loss``, ``valid_loss``,
        ``valid_score`` (accuracy), ``lr`` and ``seconds``.
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

    Examples
    --------
    >>> from skbig import TextClassifier
    >>> texts = ["free prize, call now", "see you at lunch"] * 20
    >>> labels = ["spam", "ham"] * 20
    >>> clf = TextClassifier(max_epochs=5, random_state=0).fit(texts, labels)
    >>> clf.predict(["call now to claim your prize"]).tolist()
    ['spam']
    """

    _task = "text-classification"

    backend: str = "fasttext"

    def _check_X(self, X: Any, *, fitting: bool) -> list[str]:
        return check_texts(X)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.non_deterministic = self.random_state is None
        return tags
