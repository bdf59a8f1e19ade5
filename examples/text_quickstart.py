"""Text classification in ten lines: fit, evaluate, inspect, save and reload.

Run: ``.venv/bin/python examples/text_quickstart.py`` (about a minute on a laptop CPU).
"""

from sklearn.metrics import classification_report
from sklearn.model_selection import train_test_split

import skbig
from skbig.datasets import load_sms_spam_sample

texts, labels = load_sms_spam_sample()
X_train, X_test, y_train, y_test = train_test_split(
    texts, labels, test_size=0.2, stratify=labels, random_state=0
)

clf = skbig.TextClassifier(random_state=0, verbose=1).fit(X_train, y_train)
print(classification_report(y_test, clf.predict(X_test), digits=3))

for record in clf.history_:
    epoch, loss, accuracy = record["epoch"], record["train_loss"], record["valid_score"]
    print(f"epoch {epoch:2d}  train loss {loss:.4f}  valid accuracy {accuracy:.4f}")
print(f"kept the weights of epoch {clf.best_epoch_}")

print(clf.predict(["Free entry to win a brand new phone! Text WIN to 80808", "ok, see you at the station"]))

path = clf.save("sms_spam.skbig")
reloaded = skbig.load(path)
assert (reloaded.predict(X_test) == clf.predict(X_test)).all()
print(f"saved and reloaded {path}")
path.unlink()
