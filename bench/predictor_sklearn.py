#!/usr/bin/python3
"""bench/predictor_sklearn.py TRAIN.csv TEST.csv: the original runtime predictor.

The system tinytemp grew from predicted runtimes with a scikit-learn
RandomForestRegressor behind a one-hot ColumnTransformer, tuned by
RandomizedSearchCV on the raw runtime (no log target).  This script rebuilds
that pipeline, trains it on TRAIN.csv, evaluates it on TEST.csv with the same
figures bench/predictor_bench.sh computes for tinytemp in SQL, and prints
them as one JSON line on stdout (progress goes to stderr).

The CSVs are `\\copy ... CSV HEADER` exports of tinytemp_synthetic_jobs():
an empty field is a NULL.
"""
import json
import sys
import time

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.model_selection import RandomizedSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

CATEGORICAL = ["job_type", "model", "gpu_type"]
NUMERIC = ["dataset_size", "epochs", "batch_size", "cpus", "gpus", "memory_mb"]
TARGET = "runtime_s"
SEED = 42

# The search space of the original service.
PARAM_DISTRIBUTIONS = {
    "forest__n_estimators": [100, 200, 300],
    "forest__max_depth": [None, 10, 20, 30],
    "forest__min_samples_split": [2, 5, 10],
    "forest__min_samples_leaf": [1, 2, 4],
    "forest__max_features": [1.0, "sqrt", 0.5],
}


def load(path):
    """Read one export; text NULLs stay NaN until the imputer names them."""
    frame = pd.read_csv(path, dtype={c: "object" for c in CATEGORICAL})
    return frame[CATEGORICAL + NUMERIC], frame[TARGET].to_numpy(dtype=float)


def pipeline():
    """One-hot categories (NULL as its own 'none'), median-imputed numbers, a forest."""
    categories = Pipeline([
        ("impute", SimpleImputer(strategy="constant", fill_value="none")),
        ("onehot", OneHotEncoder(handle_unknown="ignore")),
    ])
    numbers = SimpleImputer(strategy="median")
    features = ColumnTransformer([
        ("categorical", categories, CATEGORICAL),
        ("numeric", numbers, NUMERIC),
    ])
    return Pipeline([
        ("features", features),
        ("forest", RandomForestRegressor(random_state=SEED)),
    ])


def figures(actual, predicted):
    """MdAPE, R^2 of log runtime and Spearman's rho, as the SQL side computes them."""
    predicted = np.maximum(predicted, 1e-9)
    mdape = float(np.median(np.abs(predicted - actual) / actual))
    log_actual, log_predicted = np.log(actual), np.log(predicted)
    ss_res = np.sum((log_predicted - log_actual) ** 2)
    ss_tot = np.sum((log_actual - log_actual.mean()) ** 2)
    rho = spearmanr(actual, predicted).correlation
    return mdape, float(1.0 - ss_res / ss_tot), float(rho)


def main():
    """Train, evaluate, print one JSON line."""
    if len(sys.argv) != 3:
        sys.exit("usage: predictor_sklearn.py TRAIN.csv TEST.csv")
    x_train, y_train = load(sys.argv[1])
    x_test, y_test = load(sys.argv[2])

    search = RandomizedSearchCV(pipeline(), PARAM_DISTRIBUTIONS, n_iter=10, cv=3,
                                random_state=SEED, n_jobs=2)
    print(f"fitting RandomizedSearchCV on {len(y_train)} rows ...", file=sys.stderr)
    start = time.perf_counter()
    search.fit(x_train, y_train)
    train_s = time.perf_counter() - start

    start = time.perf_counter()
    predicted = search.predict(x_test)
    predict_s = time.perf_counter() - start
    mdape, r2_log, spearman = figures(y_test, predicted)
    print(json.dumps({
        "mdape": mdape,
        "r2_log": r2_log,
        "spearman": spearman,
        "train_s": train_s,
        "predictions_per_s": len(y_test) / predict_s,
        "best_params": {k.split("__", 1)[1]: v for k, v in search.best_params_.items()},
    }))


if __name__ == "__main__":
    main()
