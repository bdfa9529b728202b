"""Cost-landscape analysis of an enumerated cost vector C(σ).

Conventions (shared with :mod:`qmlapp.kinds.hypernet.layouts`): bit p of a bitstring is layout parameter p and the
integer index is Σ_p b_p 2^(n−1−p) (MSB first); spins are s_p = 2b_p − 1, so bit 1 ↔ spin +1.

Walsh/Z-Pauli expansion: C(σ) = Σ_S c_S Π_{i∈S} s_i with c_S = 2^−n Σ_σ C(σ) Π_{i∈S} s_i. A subset S is
stored at the index whose bits are the members of S in the same MSB-first convention (bit p of the index set
⇔ p ∈ S), so c[0] is the mean cost and c[2^(n−1−p)] the coefficient of s_p alone. Sign convention: because
s_i = 2b_i − 1 (not 1 − 2b_i), Π_{i∈S} s_i = (−1)^{|S|} (−1)^{b·S}: the coefficients of odd |S| have the
opposite sign to the plain ±1 Hadamard transform (−1)^{b·S}. Weights c_S² per order are sign-independent.

NumPy only: cheap once C is known (O(n 2ⁿ)), so the web process may call it.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _n_of(values: np.ndarray) -> int:
    size = values.size
    n = size.bit_length() - 1
    if size < 1 or 2**n != size:
        raise ValueError(f"a cost vector must have length 2^n, got {size}")
    return n


def _butterflies(values: np.ndarray, inverse: bool) -> np.ndarray:
    x = np.array(values, dtype=np.float64, copy=True).ravel()
    n = _n_of(x)
    for p in range(n):  # one pass per bit: (lo, hi) = values at b_p = 0 / 1, or c_S without / with p
        v = x.reshape(2**p, 2, 2 ** (n - p - 1))
        lo, hi = v[:, 0, :], v[:, 1, :]
        if inverse:  # C(b_p=0) = c0 − c1 (s_p = −1), C(b_p=1) = c0 + c1
            lo -= hi
            hi *= 2.0
            hi += lo
        else:  # c without p = lo + hi, c with p = hi − lo (s_p = +1 at b_p = 1)
            hi -= lo
            lo *= 2.0
            lo += hi
    return x


def walsh_coefficients(costs: np.ndarray) -> np.ndarray:
    """c_S = 2^−n Σ_σ C(σ) Π_{i∈S} s_i for every subset S (index convention in the module docstring), by an
    in-place fast Walsh–Hadamard transform: n vectorised butterfly passes, O(n 2ⁿ)."""
    x = _butterflies(costs, inverse=False)
    x /= x.size
    return x


def inverse_walsh(coeffs: np.ndarray) -> np.ndarray:
    """C(σ) = Σ_S c_S Π_{i∈S} s_i: the inverse of :func:`walsh_coefficients` (for checks and truncations)."""
    return _butterflies(coeffs, inverse=True)


def popcounts(n: int) -> np.ndarray:
    """|S| for every subset index 0 … 2ⁿ−1."""
    idx = np.arange(2**n, dtype=np.int64)
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(idx).astype(np.int64)
    out = np.zeros_like(idx)
    for p in range(n):
        out += (idx >> p) & 1
    return out


def walsh_weight_by_order(coeffs: np.ndarray, n: int) -> np.ndarray:
    """W_k = Σ_{|S|=k} c_S², k = 0 … n: how much of the landscape is k-body (Parseval: Σ_k W_k = mean C²)."""
    c = np.asarray(coeffs, dtype=np.float64).ravel()
    if c.size != 2**n:
        raise ValueError(f"expected 2^{n} coefficients, got {c.size}")
    return np.bincount(popcounts(n), weights=c * c, minlength=n + 1)


def local_minima(costs: np.ndarray, n: int) -> np.ndarray:
    """Indices σ (ascending) with C(σ) ≤ C(σ ⊕ e_i) for every single-bit flip i: the traps of bit-flip search."""
    c = np.asarray(costs, dtype=np.float64).ravel()
    if c.size != 2**n:
        raise ValueError(f"expected 2^{n} costs, got {c.size}")
    t = c.reshape((2,) * n) if n else c
    ok = np.ones(t.shape, dtype=bool)
    for p in range(n):
        ok &= t <= np.flip(t, axis=p)  # flipping axis p maps every σ to σ ⊕ e_p
    return np.flatnonzero(ok.ravel())


def optimal_set(costs: np.ndarray, eps: float) -> np.ndarray:
    """Indices (ascending) of the ε-optimal set O_ε = {σ : C(σ) ≤ C_min + ε}; a set, because of degenerate
    optima (hidden-unit permutations, weights on empty pixels)."""
    c = np.asarray(costs, dtype=np.float64).ravel()
    if eps < 0:
        raise ValueError(f"eps must be ≥ 0, got {eps}")
    return np.flatnonzero(c <= c.min() + eps)


def _bitstrings(indices: np.ndarray, n: int) -> list[str]:
    return [format(int(i), f"0{n}b") if n else "" for i in indices]


def landscape_summary(costs: np.ndarray, n: int, eps: float, *, bins: int = 60,
                      max_listed: int = 64) -> dict[str, Any]:
    """JSON-able overview of a cost landscape: extremes, ε-optimal set, local minima, Walsh weight per order
    and a histogram. Listed bitstrings are the lowest-cost ones (ties by index), at most ``max_listed``."""
    c = np.asarray(costs, dtype=np.float64).ravel()
    if c.size != 2**n:
        raise ValueError(f"expected 2^{n} costs, got {c.size}")
    opt = optimal_set(c, eps)
    opt = opt[np.argsort(c[opt], kind="stable")]
    mins = local_minima(c, n)
    mins = mins[np.argsort(c[mins], kind="stable")]
    weights = walsh_weight_by_order(walsh_coefficients(c), n)
    higher = float(weights[1:].sum())
    fraction = (weights[1:] / higher) if higher > 0 else np.zeros(n)
    counts, edges = np.histogram(c, bins=bins)
    return {
        "n_bits": int(n),
        "n_networks": int(c.size),
        "global_min_loss": float(c.min()),
        "max_loss": float(c.max()),
        "mean_loss": float(c.mean()),
        "tolerance": float(eps),
        "n_optimal_bitstrings": int(opt.size),
        "optimal_bitstrings": _bitstrings(opt[:max_listed], n),
        "n_local_minima": int(mins.size),
        "local_minima_bitstrings": _bitstrings(mins[:max_listed], n),
        "walsh_weights": [float(w) for w in weights],
        "walsh_weights_fraction": [float(f) for f in fraction],
        "walsh_note": "walsh_weights[k] = Σ_{|S|=k} c_S² for k = 0…n (order 0 is mean(C)²; the total is "
                      "mean(C²)); walsh_weights_fraction lists orders 1…n only, normalised to sum to 1.",
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(k) for k in counts]},
    }
