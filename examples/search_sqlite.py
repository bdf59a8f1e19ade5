"""Optuna search with pruning, a persistent SQLite study, resume, and plots.

Run: ``.venv/bin/python examples/search_sqlite.py`` (a couple of minutes on a CPU).
The study lives in ``sms_search.db`` in the current folder.  The script runs
it in two steps to show resuming: a first search with a budget of 4 trials,
then a new ``OptunaSearchCV`` on the same storage and study name with a
budget of 8, which keeps the 4 finished trials and runs only the missing 4.
Interrupting it (Ctrl-C) and running it again works the same way: the
interrupted trial is retried with the same configuration, and its fits resume
from their last epoch's checkpoint in ``sms_search_checkpoints/`` (each
trial's folder is deleted when the trial ends; the refit's checkpoint stays).  Several
copies can run at once on one study (or use ``skbig search-worker`` with a
PostgreSQL URL to spread trials over machines).
"""

from pathlib import Path

from skbig import OptunaSearchCV, TextClassifier
from skbig.datasets import load_sms_spam_sample
from skbig.search import Float

texts, labels = load_sms_spam_sample()
texts, labels = texts[:800], labels[:800]


def search(n_trials: int, refit: bool = True) -> OptunaSearchCV:
    return OptunaSearchCV(
        TextClassifier(max_epochs=4, random_state=0, checkpoint_dir="sms_search_checkpoints"),
        {
            "lr": Float(1e-4, 3e-2, log=True),
            "backend_params__embed_dim": [16, 32, 64],
            "backend_params__dropout": Float(0.0, 0.5),
        },
        n_trials=n_trials,  # the study's total budget, not "this many more"
        cv=3,
        storage="sqlite:///sms_search.db",  # persistent: rerun to resume
        study_name="sms-fasttext",
        random_state=0,
        refit=refit,
        verbose=1,
    )


first = search(n_trials=4, refit=False).fit(texts, labels)
kept = {t.number: t.value for t in first.study_.trials}
print(f"first run: the study holds {first.n_trials_} trials, best CV accuracy {first.best_score_:.4f}")

resumed = search(n_trials=8).fit(texts, labels)  # a new process would do exactly the same
same = all(t.value == kept[t.number] for t in resumed.study_.trials if t.number in kept)
print(
    f"resumed: the study holds {resumed.n_trials_} trials; the first {len(kept)} were kept unchanged: {same}"
)
print(f"best CV accuracy {resumed.best_score_:.4f} with {resumed.best_params_}")
print(resumed.trials_dataframe()[["number", "state", "value"]].to_string(index=False))
for plot in ("plot_optimization_history", "plot_param_importances"):
    path = getattr(resumed, plot)(Path(f"{plot}.png"))
    print(f"wrote {path}")
