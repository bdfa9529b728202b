"""Datasets shipped with the app (no downloads at run time).

``DATASETS`` holds static facts so that specs can be validated without loading any data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILES = Path(__file__).parent / "files"


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    n_samples: int
    n_features: int
    n_classes: int
    source: str


DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo("iris", "Iris", 150, 4, 3, "scikit-learn load_iris (Fisher 1936)"),
        DatasetInfo("wine", "Wine", 178, 13, 3, "scikit-learn load_wine (UCI 109)"),
        DatasetInfo("breast_cancer", "Breast cancer (diagnostic)", 569, 30, 2,
                    "scikit-learn load_breast_cancer (UCI 17)"),
        DatasetInfo("digits", "Digits 8x8", 1797, 64, 10, "scikit-learn load_digits (UCI 80)"),
        DatasetInfo("rice", "Rice (Cammeo/Osmancik)", 3810, 7, 2, "UCI 545, Cinar & Koklu 2019, CC BY 4.0"),
        DatasetInfo("banknote", "Banknote authentication", 1372, 4, 2, "UCI 267, CC BY 4.0"),
        DatasetInfo("glass", "Glass identification", 214, 9, 6, "UCI 42, CC BY 4.0"),
    )
}

_CSV = {
    "rice": "rice_cammeo_osmancik.csv",
    "banknote": "banknote_authentication.csv",
    "glass": "glass.csv",
}


@dataclass(frozen=True)
class Dataset:
    """Features ``X`` (float64, rows in the original order) and labels ``y`` re-encoded to 0..K-1."""

    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]


def load_dataset(name: str) -> Dataset:
    """Load a shipped dataset by name (see ``DATASETS``)."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if name in _CSV:
        import pandas as pd

        frame = pd.read_csv(FILES / _CSV[name])
        labels = frame.pop("label")
        classes = sorted(labels.unique(), key=str)
        index = {c: i for i, c in enumerate(classes)}
        return Dataset(
            name,
            frame.to_numpy(dtype=np.float64),
            labels.map(index).to_numpy(dtype=np.int64),
            tuple(frame.columns),
            tuple(str(c) for c in classes),
        )
    from sklearn import datasets as skd

    loader = {
        "iris": skd.load_iris,
        "wine": skd.load_wine,
        "breast_cancer": skd.load_breast_cancer,
        "digits": skd.load_digits,
    }[name]
    bunch = loader()
    names = getattr(bunch, "feature_names", None)
    if names is None or len(names) == 0:
        names = [f"x{i}" for i in range(bunch.data.shape[1])]
    targets = getattr(bunch, "target_names", None)
    class_names = tuple(str(t) for t in targets) if targets is not None else tuple(
        str(c) for c in np.unique(bunch.target)
    )
    return Dataset(name, np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64),
                   tuple(str(n) for n in names), class_names)
