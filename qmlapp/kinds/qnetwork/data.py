"""Inputs for the ``qnetwork`` experiment: real binary tasks zero-padded to a power of two, or random inputs.

Amplitude encoding maps x to x/‖x‖ on ⌈log₂N⌉ qubits, so ‖x‖ is lost. For standardised
features the norm carries little class information and dropping it is acceptable; for the digits the pixel
intensities are kept raw (non-negative images, several always-zero pixels that standardisation would divide by
zero). ``append_norm=True`` keeps the norm the only way that survives normalisation: it appends a *constant*
c (the median training norm) before encoding, so x̂' = (x, c)/√(‖x‖² + c²) and the last amplitude
c/√(‖x‖² + c²) encodes ‖x‖. (Appending ‖x‖ itself would not help: (x, ‖x‖)/(√2‖x‖) = (x̂, 1)/√2.) It can
change the padded size (banknote 4 → 8, digits 64 → 128), so it is off by default and the spec's fixed sizes
assume it off.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from qmlapp.kinds.qnetwork.accounting import register_qubits

TEST_FRACTION = 0.25
# name -> (raw features, standardise with training statistics?, label-1 meaning, class names (label 0, label 1))
_REAL: dict[str, tuple[int, bool, str, tuple[str, str]]] = {
    "digits": (64, False, "label 1 = digit 1 (digits 0 vs 1 only)", ("digit 0", "digit 1")),
    "breast_cancer": (30, True, "label 1 = malignant (scikit-learn's target 0), label 0 = benign",
                      ("benign", "malignant")),
    "rice": (7, True, "label 1 = Osmancik, label 0 = Cammeo", ("Cammeo", "Osmancik")),
    "banknote": (4, True, "label 1 = class 1 of the UCI file, label 0 = class 0", ("0", "1")),
}
DATASET_NAMES = ("synthetic", *_REAL)


@dataclass(frozen=True)
class QnetData:
    """Train/test inputs zero-padded to ``n_features`` = 2ⁿ columns (float64) and 0/1 labels (int64).

    For ``synthetic`` the labels are None: the runner fills them from a teacher network (:meth:`with_labels`),
    so an unlabelled set cannot be trained on by mistake.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray | None
    n_features: int  # after zero-padding (a power of two)
    n_raw_features: int  # before padding (including the appended constant when append_norm)
    description: str
    class_names: tuple[str, str] = ("0", "1")

    @property
    def n_qubits(self) -> int:
        return register_qubits(self.n_features)

    @property
    def labelled(self) -> bool:
        return self.y_train is not None and self.y_test is not None

    def with_labels(self, y_train: np.ndarray, y_test: np.ndarray) -> QnetData:
        """A copy with labels (for synthetic inputs labelled by a teacher)."""
        y_train, y_test = np.asarray(y_train, dtype=np.int64), np.asarray(y_test, dtype=np.int64)
        if y_train.shape != (len(self.X_train),) or y_test.shape != (len(self.X_test),):
            raise ValueError("label arrays must match the numbers of train and test rows")
        return dataclasses.replace(self, y_train=y_train, y_test=y_test)


def padded_size(n_features: int) -> int:
    """2^⌈log₂N⌉ (at least 2): the amplitude vector length on the register."""
    return 2 ** register_qubits(n_features)


def pad_features(X: np.ndarray, size: int | None = None) -> np.ndarray:
    """Zero-pad the columns of X to ``size`` (default: the next power of two); zeros do not change x̂."""
    X = np.asarray(X, dtype=np.float64)
    size = padded_size(X.shape[1]) if size is None else size
    if size < X.shape[1]:
        raise ValueError(f"cannot pad {X.shape[1]} features to {size}")
    return np.pad(X, ((0, 0), (0, size - X.shape[1])))


def random_inputs(n_features: int, count: int, seed: int) -> np.ndarray:
    """``count`` seeded Gaussian inputs of dimension N, normalised (uniform on the sphere), padded to 2ⁿ.

    Normalising changes nothing the circuit sees (amplitude encoding normalises anyway) and makes each row a
    ready amplitude vector.
    """
    if n_features < 2 or count < 1:
        raise ValueError(f"need n_features ≥ 2 and count ≥ 1, got {n_features}, {count}")
    X = np.random.default_rng(seed).standard_normal((count, n_features))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return pad_features(X)


def load_qnet_data(name: str, *, n_features: int | None = None, train_size: int, seed: int,
                   append_norm: bool = False) -> QnetData:
    """Load a binary task for the split model: 75/25 stratified split with ``seed``, train set capped at
    ``train_size`` (stratified), standardisation with training statistics only, zero-padding to a power of two.

    ``n_features``: required for ``synthetic`` (its dimension N; ⌈train_size/3⌉ test rows are drawn so the
    split is 75/25 too); for real data it may be omitted, and if given must equal the padded size.
    """
    if name == "synthetic":
        if n_features is None:
            raise ValueError("synthetic inputs need n_features")
        if train_size < 1:
            raise ValueError(f"train_size must be ≥ 1, got {train_size}")
        n_test = math.ceil(train_size * TEST_FRACTION / (1 - TEST_FRACTION))
        X = random_inputs(n_features, train_size + n_test, seed)
        return QnetData("synthetic", X[:train_size], None, X[train_size:], None, X.shape[1], n_features,
                        f"synthetic: {train_size} + {n_test} seeded Gaussian inputs (normalised) of dimension "
                        f"{n_features}, padded to {X.shape[1]}; labels come from the runner's teacher network")
    if name not in _REAL:
        raise KeyError(f"unknown qnetwork dataset {name!r}; known: {', '.join(DATASET_NAMES)}")
    from sklearn.model_selection import train_test_split

    from qmlapp.datasets import load_dataset

    n_raw, standardise, label_note, class_names = _REAL[name]
    data = load_dataset(name)
    X, y = data.X, data.y
    if name == "digits":
        keep = y <= 1
        X, y = X[keep], y[keep]
    elif name == "breast_cancer":
        y = 1 - y  # scikit-learn: 0 = malignant, 1 = benign
    keep = np.linalg.norm(X, axis=1) > 0  # a zero vector has no amplitude encoding
    dropped = int((~keep).sum())
    X, y = X[keep], y[keep].astype(np.int64)

    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=TEST_FRACTION, stratify=y, random_state=seed)
    if train_size < len(X_tr):
        if train_size < 2:
            raise ValueError(f"train_size must be ≥ 2 for a stratified cap, got {train_size}")
        X_tr, _, y_tr, _ = train_test_split(X_tr, y_tr, train_size=train_size, stratify=y_tr, random_state=seed)
    if standardise:
        mean, std = X_tr.mean(axis=0), X_tr.std(axis=0)
        std[std == 0] = 1.0
        X_tr, X_te = (X_tr - mean) / std, (X_te - mean) / std
    n_cols = n_raw
    if append_norm:
        c = float(np.median(np.linalg.norm(X_tr, axis=1)))
        X_tr = np.column_stack([X_tr, np.full(len(X_tr), c)])
        X_te = np.column_stack([X_te, np.full(len(X_te), c)])
        n_cols += 1
    size = padded_size(n_cols)
    if n_features is not None and n_features != size:
        raise ValueError(f"dataset {name!r} has {n_cols} features, padded to {size}; got n_features={n_features}")
    desc = (f"{name}: {n_raw} features{' standardised with training statistics,' if standardise else ''}"
            f"{' plus a constant (norm-preserving),' if append_norm else ''} zero-padded to {size} "
            f"({register_qubits(size)} qubits); {len(X_tr)} train / {len(X_te)} test; {label_note}"
            f"{f'; {dropped} all-zero rows dropped' if dropped else ''}")
    return QnetData(name, pad_features(X_tr, size), y_tr.astype(np.int64), pad_features(X_te, size),
                    y_te.astype(np.int64), size, n_cols, desc, class_names)
