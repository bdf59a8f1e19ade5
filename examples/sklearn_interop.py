"""skbig estimators inside scikit-learn: Pipeline, GridSearchCV, cross_val_score and joblib.

Every skbig estimator is a scikit-learn estimator: parameters live in
``get_params`` (backend hyper-parameters too, as ``backend_params__<name>``),
``clone`` works, and fitted models pickle.  Run:
``.venv/bin/python examples/sklearn_interop.py`` (about a minute on a laptop CPU).
"""

import re
import tempfile
from pathlib import Path

import joblib
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from skbig import TextClassifier
from skbig.datasets import load_sms_spam_sample


def mask_numbers(texts):
    """A preprocessing step: phone numbers and prices become one token."""
    return [re.sub(r"\d+", " NUM ", text) for text in texts]


texts, labels = load_sms_spam_sample()
X_train, X_test, y_train, y_test = train_test_split(
    texts, labels, train_size=600, test_size=400, stratify=labels, random_state=0
)

pipe = Pipeline(
    [
        ("mask", FunctionTransformer(mask_numbers)),
        ("clf", TextClassifier(max_epochs=3, random_state=0)),
    ]
)

# Cross-validation: three clones of the pipeline, each fitted on two thirds of the data.
scores = cross_val_score(pipe, X_train, y_train, cv=3, scoring="f1_macro")
print(f"cross_val_score F1 macro: {scores.round(3).tolist()} (mean {scores.mean():.3f})")

# Grid search over an estimator parameter and a backend hyper-parameter.
grid = GridSearchCV(
    pipe,
    {"clf__lr": [3e-3, 1e-2], "clf__backend_params__embed_dim": [16, 64]},
    cv=3,
    scoring="f1_macro",
)
grid.fit(X_train, y_train)
print(f"GridSearchCV best {grid.best_params_} CV F1 {grid.best_score_:.3f}")
print(f"held-out F1 macro of the refitted best pipeline: {grid.score(X_test, y_test):.3f}")

# joblib: the whole fitted pipeline, preprocessing included, in one file.
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "pipeline.joblib"
    joblib.dump(grid.best_estimator_, path)
    reloaded = joblib.load(path)
    same = (reloaded.predict(X_test) == grid.predict(X_test)).all()
    print(f"joblib dump/load: {path.stat().st_size / 1e6:.1f} MB, identical predictions: {same}")
