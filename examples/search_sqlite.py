"""Optuna search with pruning, a persistent SQLite study, resume, and plots.

Run: ``.venv/bin/python examples/search_sqlite.py`` (a couple of minutes on a CPU).
Interrupt it with Ctrl-C and run it again: finished trials are kept and only
the missing ones run.  Several copies can run at once on one study (or use
``skbig search-worker`` with a PostgreSQL URL to spread trials over machines).
"""

from pathlib import Path

from skbig import OptunaSearchCV, TextClassifier
from skbig.datasets import load_sms_spam_sample
from skbig.search import Float

texts, labels = load_sms_spam_sample()
texts, labels = texts[:1000], labels[:1000]

search = OptunaSearchCV(
    TextClassifier(max_epochs=4, random_state=0),
    {
        "lr": Float(1e-4, 3e-2, log=True),
        "backend_params__embed_dim": [16, 32, 64],
        "backend_params__dropout": Float(0.0, 0.5),
    },
    n_trials=12,
    cv=3,
    storage="sqlite:///sms_search.db",  # persistent: rerun to resume
    study_name="sms-fasttext",
    random_state=0,
    verbose=1,
)
search.fit(texts, labels)

print(f"best CV accuracy {search.best_score_:.4f} with {search.best_params_}")
print(search.trials_dataframe()[["number", "state", "value"]].to_string(index=False))
for plot in ("plot_optimization_history", "plot_param_importances"):
    path = getattr(search, plot)(Path(f"{plot}.png"))
    print(f"wrote {path}")
