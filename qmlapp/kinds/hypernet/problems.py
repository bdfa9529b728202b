"""Data and cost functions of the quantum-hypernetwork problems: C(σ) for one BNN or for all 2ⁿ of them.

Every bitstring σ of a :class:`~qmlapp.kinds.hypernet.layouts.BitLayout` is one binary neural network and C(σ) is
its training loss: ``mse`` = mean (ŷ − y)² or ``bce`` = mean binary cross-entropy in nats, with
ŷ = sigmoid(logit). :func:`network_cost` evaluates one network directly from :meth:`BitLayout.decode` (the
reference); :func:`enumerate_costs` returns the whole cost vector (index = layout index, MSB first) fast by
exploiting structure instead of running 2ⁿ forward passes:

* **Labels fold into the logit.** With t = 1 − 2y and u = t·z, both losses are one function of u per point:
  mse (ŷ − y)² = sigmoid(u)², bce = softplus(u).
* **Sparse inputs.** A point's loss does not depend on the input weights of its zero features. Points are
  grouped by their support (non-zero features; 4×4 MNIST has ~250 patterns of ≤ 7 pixels) and deduplicated;
  each group is evaluated for the 2^|R| settings of its relevant bits R only, then broadcast-added onto the
  (2,)*n cost tensor. Dense 2-D data form a single group with R = every bit.
* **Hidden units are interchangeable.** A unit's contribution W2[h]·act(x·W1[:,h] + b1[h]) is one of
  K = 2^(n_in+2) vectors, and z = b2 + Σ_active term is a function of the *multiset* of active unit configs:
  for 2 → 4 → 1 that is C(19, 4) = 3,876 multisets × 2 biases × 2 activations = 15,504 distinct logit vectors
  instead of 2¹⁸. They are evaluated in prefix blocks (no gathers), with e^(−u) built as a product of
  per-unit factors when that cannot overflow (mse), so the inner loop is multiply/add/reciprocal only.
  Costs are then scattered back to every index through the sorted-config rank. Permutation-equivalent
  networks therefore get bit-identical costs, which keeps degenerate optima degenerate.
* **Logistic regression** (no hidden layer) is linear: per group all 2^s logits come from one small matmul.

Layouts that do not match the known field structure fall back to :func:`_enumerate_direct`, a vectorised
batch forward pass (also the cross-check in the tests). Pure NumPy/SciPy/scikit-learn: the web process
imports this module, so it must never import TensorFlow, Cirq or Streamlit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit

from qmlapp.kinds.hypernet.layouts import BitLayout, as_bits, bits_to_index, bits_to_str

MNIST4X4 = Path(__file__).resolve().parents[2] / "datasets" / "files" / "mnist4x4.npz"
MNIST_PAIRS = {"mnist01": (0, 1), "mnist37": (3, 7)}  # (label 0 digit, label 1 digit)
GAUSS_STD = math.sqrt(0.1)  # covariance 0.1·I
GAUSS_MEAN0 = ((-1.0, -2.0),)
GAUSS_MEANS1 = ((-2.0, 1.0), (1.0, 1.0), (2.0, -2.0))
SPLITS = ("train", "test")

_BLOCK_ELEMS = 1 << 21  # working-buffer elements (16 MB of float64) for chunked evaluation
_PAIR_TABLE_ELEMS = 1 << 25  # largest pairwise unit-term table (256 MB) before the direct fallback
_EXP_SAFE = 600.0  # |logit| bound under which e^(−u) as a product of per-unit factors cannot overflow


@dataclass(frozen=True, eq=False)
class ProblemData:
    """Training (or test) points of one problem: X (N, n_inputs) float64, labels y ∈ {0, 1} float64."""

    name: str
    X: np.ndarray
    y: np.ndarray
    description: str
    split: str = "train"

    @property
    def n_points(self) -> int:
        return len(self.y)

    def subset(self, rows: Any) -> ProblemData:
        """The same problem on selected rows (tests and quick previews)."""
        return ProblemData(self.name, self.X[rows], self.y[rows], f"{self.description} (subset)", self.split)


# --- data -----------------------------------------------------------------------------------------


def gaussian_mixture(n_points: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The paper's 2-D mixture, seeded: labels, then components, then unit normals, in that order.

    y = 1 with probability 0.5; label 0 from N((−1,−2), 0.1·I); label 1 from an equal mixture of
    N((−2,1)), N((1,1)), N((2,−2)), each with covariance 0.1·I.
    """
    rng = np.random.default_rng(seed)
    y = (rng.random(n_points) < 0.5).astype(np.float64)
    comp = rng.integers(0, len(GAUSS_MEANS1), size=n_points)
    noise = rng.standard_normal((n_points, 2))
    means = np.where(y[:, None] == 1, np.asarray(GAUSS_MEANS1)[comp], np.asarray(GAUSS_MEAN0)[0])
    return means + GAUSS_STD * noise, y


@lru_cache(maxsize=1)
def _mnist4x4() -> dict[str, np.ndarray]:
    if not MNIST4X4.exists():
        raise FileNotFoundError(f"{MNIST4X4} is missing; build it with scripts/make_mnist4x4.py")
    with np.load(MNIST4X4) as f:
        out = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test", "meta")}
    for v in out.values():
        v.setflags(write=False)
    return out


def load_problem_data(layout: BitLayout, *, n_points: int = 10_000, seed: int = 0,
                      split: str = "train") -> ProblemData:
    """The data set of a layout. Synthetic sets are drawn from ``seed`` (train = evaluation points, as in the
    paper, so ``split="test"`` is refused); MNIST pairs use every image of the split (``n_points`` and
    ``seed`` are ignored) with the shipped 4×4 features."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    name = layout.dataset
    if name in MNIST_PAIRS:
        d0, d1 = MNIST_PAIRS[name]
        raw = _mnist4x4()
        labels = raw[f"y_{split}"]
        keep = (labels == d0) | (labels == d1)
        X = raw[f"x_{split}"][keep].astype(np.float64)
        y = (labels[keep] == d1).astype(np.float64)
        desc = (f"4×4 MNIST ({split}), digit {d0} (label 0) vs {d1} (label 1): {len(y):,} images, "
                f"{int(y.sum()):,} of label 1; pixels/255 resized by tf.image.resize (bilinear, TF defaults)")
        return ProblemData(name, X, y, desc, split)
    if split != "train":
        raise ValueError(f"{name} is synthetic: the paper trains and evaluates on the same points (no test split)")
    if n_points < 1:
        raise ValueError(f"n_points must be ≥ 1, got {n_points}")
    if name == "gaussian2d":
        X, y = gaussian_mixture(n_points, seed)
        desc = (f"2-D Gaussian mixture, {n_points:,} points (seed {seed}): label 0 ~ N((−1,−2), 0.1·I); label 1 ~ "
                "equal mixture of N((−2,1)), N((1,1)), N((2,−2)), covariance 0.1·I; P(label 1) = 0.5")
    elif name == "moons":
        from sklearn.datasets import make_moons

        X, yi = make_moons(n_samples=n_points, noise=0.1, random_state=seed)
        y = yi.astype(np.float64)
        desc = f"two moons (scikit-learn make_moons), {n_points:,} points, noise 0.1, random_state {seed}"
    elif name == "blobs":
        from sklearn.datasets import make_blobs

        X, yi = make_blobs(n_samples=n_points, centers=2, n_features=2, cluster_std=1.0, random_state=seed)
        y = yi.astype(np.float64)
        desc = (f"two Gaussian blobs (scikit-learn make_blobs), {n_points:,} points, cluster_std 1.0, "
                f"random_state {seed}")
    else:
        raise ValueError(f"unknown dataset {name!r}")
    return ProblemData(name, np.asarray(X, dtype=np.float64), y, desc, split)


def load_mnist_test(layout: BitLayout) -> ProblemData:
    """Test images of an MNIST layout, for test accuracy of the found networks."""
    return load_problem_data(layout, split="test")


# --- one network (the reference) ---------------------------------------------------------------------


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def _logits(layout: BitLayout, net: dict[str, Any], X: ArrayLike) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if layout.hidden == 0:
        return X @ net["w"] + float(net["b"])
    pre = X @ net["W1"] + net["b1"]
    h = expit(pre) if net["activation"] == "sigmoid" else np.maximum(pre, 0.0)
    a = int(net["active_hidden"])  # inactive units (width bit 0) contribute nothing
    return h[:, :a] @ net["W2"][:a] + float(net["b2"])


def _loss_from_logits(loss: str, z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-point loss; bce from logits via log-sigmoid: −[y log σ(z) + (1−y) log σ(−z)], in nats."""
    if loss == "mse":
        return (expit(z) - y) ** 2
    if loss == "bce":
        return y * _softplus(-z) + (1.0 - y) * _softplus(z)
    raise ValueError(f"unknown loss {loss!r}")


def predict_proba(layout: BitLayout, bits: Any, X: ArrayLike) -> np.ndarray:
    """ŷ = P(label 1 | x) of one network on the rows of X."""
    return expit(_logits(layout, layout.decode(bits), X))


def network_cost(layout: BitLayout, data: ProblemData, bits: Any) -> float:
    """C(σ) of one network by a plain forward pass on every point (the reference for the enumeration)."""
    z = _logits(layout, layout.decode(bits), data.X)
    return float(np.mean(_loss_from_logits(layout.loss, z, data.y)))


def network_accuracy(layout: BitLayout, data: ProblemData, bits: Any) -> float:
    """Fraction of points classified correctly, predicting 1 when ŷ > 0.5 (logit > 0)."""
    z = _logits(layout, layout.decode(bits), data.X)
    return float(np.mean((z > 0) == (data.y == 1)))


# --- all networks: structure ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Family:
    """Bit positions of a recognised layout (hidden = 0: ``w1`` is (n_in, 1) and ``w2``/``b1`` empty)."""

    n: int
    n_in: int
    hidden: int
    loss: str
    w1: np.ndarray  # (n_in, max(hidden, 1)) input-weight positions
    w2: np.ndarray  # (hidden,)
    b1: np.ndarray  # (hidden,)
    b2: int  # output bias position (``b`` when hidden = 0)
    act: int | None
    enc: tuple[int, ...]
    width: int | None
    default_activation: str

    @property
    def other(self) -> list[int]:
        """Positions every point's loss depends on (everything but the input weights)."""
        out = [*self.w2.tolist(), *self.b1.tolist(), self.b2, *self.enc]
        out += [p for p in (self.act, self.width) if p is not None]
        return out


def _family(layout: BitLayout) -> _Family | None:
    """Positions of the known fields, or None for a layout the fast path does not understand."""
    n, n_in, hidden = layout.n_bits, layout.n_inputs, layout.hidden
    f = {fl.name: fl for fl in layout.fields}
    covered = np.zeros(n, dtype=int)
    for fl in layout.fields:
        covered[fl.start:fl.stop] += 1
    if not np.all(covered == 1) or layout.loss not in ("mse", "bce"):
        return None

    def pos(name: str, length: int) -> np.ndarray | None:
        fl = f.get(name)
        return None if fl is None or fl.length != length else np.arange(fl.start, fl.stop)

    enc = f.get("encoding")
    act = f.get("activation")
    width = f.get("width")
    known = {"encoding", "activation", "width"}
    if hidden == 0:
        w, b = pos("w", n_in), pos("b", 1)
        if w is None or b is None or set(f) - {"w", "b"} - {"encoding"}:
            return None
        return _Family(n, n_in, 0, layout.loss, w.reshape(n_in, 1), np.zeros(0, int), np.zeros(0, int), int(b[0]),
                       None, tuple(range(enc.start, enc.stop)) if enc else (), None, layout.default_activation)
    w1, w2, b1, b2 = pos("W1", n_in * hidden), pos("W2", hidden), pos("b1", hidden), pos("b2", 1)
    if w1 is None or w2 is None or b1 is None or b2 is None or set(f) - {"W1", "W2", "b1", "b2"} - known:
        return None
    if (act and act.length != 1) or (width and width.length != 1) or (enc and enc.length > 4):
        return None
    return _Family(n, n_in, hidden, layout.loss, w1.reshape(n_in, hidden), w2, b1, int(b2[0]),
                   act.start if act else None, tuple(range(enc.start, enc.stop)) if enc else (),
                   width.start if width else None, layout.default_activation)


@dataclass(frozen=True)
class _Group:
    cols: np.ndarray  # support: feature indices with non-zero values
    X: np.ndarray  # (m, s) distinct rows restricted to the support
    t: np.ndarray  # (m,) 1 − 2y
    c: np.ndarray  # (m,) multiplicity / N


def _support_groups(X: np.ndarray, y: np.ndarray) -> list[_Group]:
    """Points grouped by which features are non-zero, identical (x, y) rows merged into weights."""
    N, n_in = X.shape
    if n_in <= 62:
        keys = (X != 0).astype(np.int64) @ (np.int64(1) << np.arange(n_in, dtype=np.int64))
    else:
        keys = np.full(N, -1, dtype=np.int64)
    groups = []
    for key in np.unique(keys):
        rows = np.flatnonzero(keys == key)
        cols = np.arange(n_in) if key < 0 else np.flatnonzero((int(key) >> np.arange(n_in)) & 1)
        xy = np.column_stack([X[np.ix_(rows, cols)], y[rows]])
        uniq, counts = np.unique(xy, axis=0, return_counts=True)
        groups.append(_Group(cols, np.ascontiguousarray(uniq[:, :-1]), 1.0 - 2.0 * uniq[:, -1], counts / N))
    return groups


def _bit(idx: np.ndarray, local: int, width: int) -> np.ndarray:
    return (idx >> (width - 1 - local)) & 1


def _weight_values(s: int, low: float) -> np.ndarray:
    """(2^s, s) weight values of every s-bit pattern, MSB first: bit 1 → 1, bit 0 → low."""
    bits = (np.arange(2**s)[:, None] >> np.arange(s - 1, -1, -1)) & 1
    return np.where(bits == 1, 1.0, low)


def _encodings(fam: _Family) -> list[tuple[int, float]]:
    """(e, value of a weight bit 0) for every encoding (one entry, e = −1, without encoding bits)."""
    if not fam.enc:
        return [(-1, -1.0)]
    return [(e, float(-e)) for e in range(2 ** len(fam.enc))]


def _loss_of_u(loss: str, u: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Per-point loss as a function of u = (1 − 2y)·z, in place into ``out``."""
    if loss == "mse":  # (ŷ − y)² = sigmoid(u)²
        expit(u, out=out)
        return np.multiply(out, out, out=out)
    # bce = softplus(u) = max(u, 0) + log1p(exp(−|u|))
    pos = np.maximum(u, 0.0)
    np.abs(u, out=out)
    np.negative(out, out=out)
    np.exp(out, out=out)
    np.log1p(out, out=out)
    return np.add(out, pos, out=out)


def _linear_group(fam: _Family, g: _Group, tick: Callable[[float], None]) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regression on one support group: (relevant positions R, summed loss over R's 2^|R| settings)."""
    s = len(g.cols)
    R = np.sort(np.concatenate([fam.w1[g.cols, 0], [fam.b2], list(fam.enc)]).astype(int))
    encs = _encodings(fam)
    table = np.empty((len(encs), 2, 2**s))  # [e, bias bit, weight pattern]
    rows = max(1, _BLOCK_ELEMS // 2**s)
    buf = np.empty((min(rows, len(g.t)), 2**s))
    for ei, (_, low) in enumerate(encs):
        V = _weight_values(s, low)
        for bb, bias in enumerate((-1.0, 1.0)):
            acc = np.zeros(2**s)
            for start in range(0, len(g.t), rows):
                sl = slice(start, start + rows)
                u = buf[: len(g.t[sl])]
                np.matmul(g.X[sl], V.T, out=u)
                u += bias
                u *= g.t[sl, None]
                acc += g.c[sl] @ _loss_of_u(fam.loss, u, u)
            table[ei, bb] = acc
        tick((ei + 1) / len(encs))
    # scatter onto the sub-index over R (MSB first in position order)
    j = np.arange(2 ** len(R))
    local = {int(p): k for k, p in enumerate(R)}
    widx = np.zeros_like(j)
    for p in fam.w1[g.cols, 0]:
        widx = (widx << 1) | _bit(j, local[int(p)], len(R))
    eidx = np.zeros_like(j)
    for p in fam.enc:
        eidx = (eidx << 1) | _bit(j, local[p], len(R))
    return R, table[eidx, _bit(j, local[fam.b2], len(R)), widx]


def _multisets(K: int, A: int) -> np.ndarray:
    """All sorted A-tuples over range(K) (multisets), (count, A), in lexicographic order."""
    tup = np.arange(K)[:, None]
    for _ in range(A - 1):
        last = tup[:, -1]
        reps = K - last
        base = np.repeat(tup, reps, axis=0)
        offs = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
        tup = np.column_stack([base, np.repeat(last, reps) + offs])
    return tup


def _unit_terms(fam: _Family, g: _Group, activation: str, low: float) -> np.ndarray:
    """(K, m) contributions t·W2·act(x·w1 + b1) of one hidden unit for each config
    c = (w1 pattern over the support) << 2 | W2 bit << 1 | b1 bit."""
    s = len(g.cols)
    pre = (g.X @ _weight_values(s, low).T).T  # (2^s, m)
    T = np.empty((2**s, 2, 2, len(g.t)))
    for bb, b1 in enumerate((-1.0, 1.0)):
        a = pre + b1
        a = expit(a) if activation == "sigmoid" else np.maximum(a, 0.0)
        a *= g.t
        T[:, 0, bb] = low * a
        T[:, 1, bb] = a
    return T.reshape(2 ** (s + 2), len(g.t))


def _multiset_losses(loss: str, U: np.ndarray, ub2: np.ndarray, c: np.ndarray, A: int) -> np.ndarray:
    """Summed loss for every multiset of A unit configs and both output biases: (2, C(K+A−1, A)), lex order.

    u = Σ U[c_h] + ub2[b2]. The last two slots come from a table of all unit pairs (a ≤ b, lex order), so a
    prefix (the first A−2 slots) meets one contiguous block of pairs: plain broadcasting, no gathers. For
    mse, e^(−u) is built as a product of per-unit factors when |u| ≤ _EXP_SAFE guarantees no overflow.
    """
    K, m = U.shape
    bound = A * float(np.abs(U).max(initial=0.0)) + float(np.abs(ub2).max(initial=0.0))
    mult = loss == "mse" and bound <= _EXP_SAFE
    if mult:
        U, ub2 = np.exp(-U), np.exp(-ub2)
        combine: Callable[..., np.ndarray] = np.multiply
    else:
        combine = np.add
    if A == 1:
        pairs, prefixes, offsets = U, np.zeros((1, 0), dtype=int), None
    else:
        ia, ib = np.triu_indices(K)
        pairs = combine(U[ia], U[ib])
        offsets = np.concatenate([[0], np.cumsum(K - np.arange(K))])
        prefixes = _multisets(K, A - 2) if A > 2 else np.zeros((1, 0), dtype=int)
    buf = np.empty((min(len(pairs), max(1, _BLOCK_ELEMS // m)), m))
    out = np.empty((2, math.comb(K + A - 1, A)))
    for bb in range(2):
        pos = 0
        for pre in prefixes:
            base = ub2[bb].copy()
            for k in pre:
                combine(base, U[k], out=base)
            start = 0 if len(pre) == 0 or offsets is None else int(offsets[pre[-1]])
            for r0 in range(start, len(pairs), len(buf)):
                blk = pairs[r0:r0 + len(buf)]
                v = buf[: len(blk)]
                combine(blk, base, out=v)
                if mult:  # sigmoid(u)² = 1 / (1 + e^(−u))²
                    v += 1.0
                    np.multiply(v, v, out=v)
                    np.reciprocal(v, out=v)
                else:
                    _loss_of_u(loss, v, v)
                out[bb, pos:pos + len(blk)] = v @ c
                pos += len(blk)
        assert pos == out.shape[1]
    return out


def _hidden_group(fam: _Family, g: _Group, tick: Callable[[float], None]) -> tuple[np.ndarray, np.ndarray]:
    """Hidden-layer network on one support group: (relevant positions R, summed loss over 2^|R| settings)."""
    s, H = len(g.cols), fam.hidden
    R = np.sort(np.concatenate([fam.w1[g.cols].ravel(), fam.other]).astype(int))
    nR = len(R)
    local = {int(p): k for k, p in enumerate(R)}
    j = np.arange(2**nR)

    def bit(p: int) -> np.ndarray:
        return _bit(j, local[int(p)], nR)

    configs = np.empty((len(j), H), dtype=np.int64)  # c = w1 pattern << 2 | W2 bit << 1 | b1 bit
    for h in range(H):
        c = np.zeros_like(j)
        for p in fam.w1[g.cols, h]:
            c = (c << 1) | bit(p)
        configs[:, h] = (c << 2) | (bit(fam.w2[h]) << 1) | bit(fam.b1[h])
    K = 2 ** (s + 2)
    b2 = bit(fam.b2)
    act_bit = bit(fam.act) if fam.act is not None else None
    width_bit = bit(fam.width) if fam.width is not None else np.ones_like(j)
    eidx = np.zeros_like(j)
    for p in fam.enc:
        eidx = (eidx << 1) | bit(p)
    acts = ["relu", "sigmoid"] if fam.act is not None else [fam.default_activation]
    sub = np.empty(len(j))
    combos = [(ei, low, ai, activation) for ei, (_, low) in enumerate(_encodings(fam))
              for ai, activation in enumerate(acts)]
    for done, (ei, low, ai, activation) in enumerate(combos):
        U = _unit_terms(fam, g, activation, low)
        ub2 = np.stack([-g.t, g.t])
        for wb in np.unique(width_bit):
            A = H if wb == 1 else max(1, H // 2)
            mask = (eidx == ei) & (width_bit == wb)
            if act_bit is not None:
                mask &= act_bit == ai
            if not mask.any():
                continue
            table = _multiset_losses(fam.loss, U, ub2, g.c, A)
            keys_sorted = _multiset_keys(_multisets(K, A), K)
            cfg = np.sort(configs[mask, :A], axis=1)
            rank = np.searchsorted(keys_sorted, _multiset_keys(cfg, K))
            sub[mask] = table[b2[mask], rank]
        tick((done + 1) / len(combos))
    return R, sub


def _multiset_keys(tuples: np.ndarray, K: int) -> np.ndarray:
    key = np.zeros(len(tuples), dtype=np.int64)
    for col in tuples.T:
        key = key * K + col
    return key


def _fast_ok(fam: _Family | None, groups: list[_Group]) -> bool:
    if fam is None:
        return False
    for g in groups:
        K = 2 ** (len(g.cols) + 2)
        if fam.hidden >= 2 and K * (K + 1) // 2 * len(g.t) > _PAIR_TABLE_ELEMS:
            return False
        if fam.hidden == 1 and K * len(g.t) > _PAIR_TABLE_ELEMS:
            return False
    return True


def enumerate_costs(layout: BitLayout, data: ProblemData, *, progress: Callable[[float], None] | None = None,
                    method: str = "auto") -> np.ndarray:
    """C(σ) for all 2ⁿ networks, float64, index = layout index (MSB first); equals :func:`network_cost`.

    ``method``: ``auto`` (structured fast path when the layout is understood, else direct), ``fast`` (raise if
    not possible) or ``direct`` (vectorised batch forward passes; slower, any layout).
    """
    n = layout.n_bits
    X, y = np.asarray(data.X, dtype=np.float64), np.asarray(data.y, dtype=np.float64)
    if X.ndim != 2 or X.shape != (len(y), layout.n_inputs):
        raise ValueError(f"data X must be (N, {layout.n_inputs}) with N = len(y), got {X.shape} and {y.shape}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 or 1")
    if method not in ("auto", "fast", "direct"):
        raise ValueError(f"method must be auto, fast or direct, got {method!r}")
    report = progress or (lambda _f: None)
    fam = _family(layout) if method != "direct" else None
    groups = _support_groups(X, y) if fam is not None else []
    if method == "fast" and not _fast_ok(fam, groups):
        raise ValueError("the structured fast path does not support this layout/data")
    if not _fast_ok(fam, groups):
        return _enumerate_direct(layout, X, y, report)
    assert fam is not None
    costs = np.zeros(2**n)
    tensor = costs.reshape((2,) * n)
    for k, g in enumerate(groups):
        def tick(f: float, k: int = k) -> None:
            report(min(1.0, (k + f) / len(groups)))

        R, sub = (_hidden_group if fam.hidden else _linear_group)(fam, g, tick)
        shape = [1] * n
        for p in R:
            shape[p] = 2
        tensor += sub.reshape(shape)
        report((k + 1) / len(groups))
    return costs


# --- all networks: direct (vectorised, any layout) ---------------------------------------------------


def _decode_batch(layout: BitLayout, bits: np.ndarray) -> dict[str, Any]:
    """Vectorised :meth:`BitLayout.decode` of a (B, n) bit matrix: each field as a (B, *shape) array."""
    B = len(bits)
    enc_f = layout.field("encoding")
    e = np.zeros(B)
    if enc_f is not None:
        for p in range(enc_f.start, enc_f.stop):
            e = 2 * e + bits[:, p]
    out: dict[str, Any] = {}
    for f in layout.fields:
        vals = bits[:, f.start:f.stop].astype(np.float64)
        if f.role == "weight":
            low = 0.0 - e[:, None] if enc_f is not None else -1.0
            out[f.name] = np.where(vals == 1, 1.0, low).reshape((B, *f.shape))
        elif f.role == "bias":
            out[f.name] = (2 * vals - 1).reshape((B, *f.shape))
    act_f = layout.field("activation")
    out["sigmoid"] = (bits[:, act_f.start] == 1) if act_f else np.full(B, layout.default_activation == "sigmoid")
    width_f = layout.field("width")
    active = np.full(B, layout.hidden)
    if width_f is not None:
        active = np.where(bits[:, width_f.start] == 1, layout.hidden, max(1, layout.hidden // 2))
    out["active"] = active
    return out


def _batch_logits(layout: BitLayout, nets: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """(B, N) logits of a decoded batch."""
    if layout.hidden == 0:
        return nets["w"] @ X.T + nets["b"][:, None]
    pre = np.matmul(X[None], nets["W1"]) + nets["b1"][:, None, :]  # (B, N, H)
    h = np.where(nets["sigmoid"][:, None, None], expit(pre), np.maximum(pre, 0.0))
    mask = np.arange(layout.hidden)[None, :] < nets["active"][:, None]
    w2 = np.where(mask, nets["W2"], 0.0)
    return np.matmul(h, w2[:, :, None])[..., 0] + nets["b2"][:, None]


def _enumerate_direct(layout: BitLayout, X: np.ndarray, y: np.ndarray,
                      report: Callable[[float], None]) -> np.ndarray:
    n = layout.n_bits
    total = 2**n
    chunk = max(1, _BLOCK_ELEMS // (len(y) * max(1, layout.hidden)))
    costs = np.empty(total)
    shifts = np.arange(n - 1, -1, -1)
    for start in range(0, total, chunk):
        idx = np.arange(start, min(total, start + chunk))
        bits = ((idx[:, None] >> shifts) & 1).astype(np.uint8)
        z = _batch_logits(layout, _decode_batch(layout, bits), X)
        costs[idx] = _loss_from_logits(layout.loss, z, y[None, :]).mean(axis=1)
        report(min(1.0, (start + chunk) / total))
    return costs


# --- views of one network ----------------------------------------------------------------------------


def _subsample(n: int, k: int, seed: int) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def decision_boundary(layout: BitLayout, bits: Any, data: ProblemData, *, grid: int = 120,
                      max_points: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Predicted P(label 1) on a grid covering the 2-D data (10 % margin) plus a seeded subsample of the
    points, as plain lists for a heatmap with a scatter on top: ``x`` (grid columns), ``y`` (grid rows),
    ``z[i][j]`` = P(label 1) at (x[j], y[i]), ``points`` = [[x1, x2, label], ...] (≤ ``max_points``)."""
    if layout.n_inputs != 2:
        raise ValueError(f"decision boundaries need 2 inputs, this layout has {layout.n_inputs}")
    lo, hi = data.X.min(axis=0), data.X.max(axis=0)
    margin = 0.1 * np.maximum(hi - lo, 1e-9)
    xs = np.linspace(lo[0] - margin[0], hi[0] + margin[0], grid)
    ys = np.linspace(lo[1] - margin[1], hi[1] + margin[1], grid)
    gx, gy = np.meshgrid(xs, ys)
    prob = predict_proba(layout, bits, np.column_stack([gx.ravel(), gy.ravel()])).reshape(grid, grid)
    keep = _subsample(len(data.y), max_points, seed)
    points = [[float(a), float(b), int(c)] for a, b, c in zip(data.X[keep, 0], data.X[keep, 1], data.y[keep],
                                                              strict=True)]
    return {"x": xs.tolist(), "y": ys.tolist(), "z": prob.tolist(), "points": points,
            "n_points": len(data.y), "n_shown": len(keep)}


def weight_image(layout: BitLayout, bits: Any) -> np.ndarray:
    """The 16 input weights as a 4×4 image (pixel order of the features); first hidden unit's column when
    there is a hidden layer."""
    if layout.n_inputs != 16:
        raise ValueError(f"weight images need 16 inputs (4×4 pixels), this layout has {layout.n_inputs}")
    net = layout.decode(bits)
    w = net["w"] if layout.hidden == 0 else net["W1"][:, 0]
    return np.asarray(w, dtype=np.float64).reshape(4, 4)


def describe_network(layout: BitLayout, data: ProblemData, bits: Any) -> dict[str, Any]:
    """JSON-able summary of one network: bits, index, loss, accuracy, choices and every parameter field."""
    b = as_bits(bits, layout.n_bits)
    net = layout.decode(b)
    z = _logits(layout, net, data.X)
    out: dict[str, Any] = {
        "bitstring": bits_to_str(b), "index": bits_to_index(b), "loss": float(np.mean(_loss_from_logits(
            layout.loss, z, data.y))), "loss_kind": layout.loss,
        "accuracy": float(np.mean((z > 0) == (data.y == 1))),
        "activation": net["activation"] if layout.hidden else "none",  # logistic regression: no hidden layer
        "active_hidden": int(net["active_hidden"]), "encoding": net["encoding"],
    }
    if layout.field("width") is not None:  # readable value for the layout table's "width" row
        out["width"] = "all" if net["active_hidden"] == layout.hidden else f"first {net['active_hidden']}"
    for f in layout.fields:
        if f.role in ("weight", "bias"):
            out[f.name] = np.asarray(net[f.name], dtype=float).tolist()
    return out
