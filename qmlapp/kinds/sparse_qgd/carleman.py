"""Carleman linearisation of gradient descent, its discrete history system and the HHL-ready embedding.

Gradient descent θ_{t+1} = θ_t − η∇L(θ_t) is forward Euler with step h = η on dθ/dt = −∇L(θ). Around a
reference point (u = θ − θ_ref) we model the flow by the quadratic ODE

    du/dt = F₀ + F₁u + F₂(u⊗u),   F₀ = −∇L(θ_ref),  F₁ = −H,  F₂ = −½∇³L (contracted, n×n²).

For a real network the third-derivative tensor ∇³L (n³ entries) is **not computed**; :meth:`QuadraticODE.
from_hessian` takes a scalar β instead, from the cubic term (β/3)Σuᵢ³ of the loss (F₂[i,(i,i)] = −β). β is a
stated modelling choice, not a measured quantity.

Carleman (PNAS, ``carleman_burgers.m``): y = (u, u^⊗2, …, u^⊗N_c), D_c = Σ_{k≤N_c} nᵏ, dy/dt = A y + b with
blocks A_{j,j+k−1} = Σ_{p=1}^{j} I^{⊗(p−1)} ⊗ F_k ⊗ I^{⊗(j−p)} (k = 0, 1, 2; the k = 0 part of block row 1
is b). Forward Euler y_{m+1} = (I + hA) y_m + h b. The reference for its error is the exact Euler (= GD)
iterates of the nonlinear map, not an ODE solver.

History system (**our construction**; the paper lists the discrete-time construction as future
work): Y = (y₀, …, y_{T+P}) solves 𝓛Y = (y_init, hb, …, hb, 0, …, 0) with 𝓛 = I − S⊗M, S the lower shift,
M = M_c = I + hA in the T Euler rows and M = I in the P idle ("copy") rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla

DENSE_SVD_MAX = 600  # exact dense SVD up to this dimension (a 2000² SVD takes ~15 s on 2 shared cores)


def _as_csr(M: Any) -> sp.csr_matrix:
    return sp.csr_matrix(M) if not sp.issparse(M) else M.tocsr()


def _spectral_norm(M: Any) -> float:
    """‖M‖₂ (largest singular value); dense SVD when small, ``svds`` otherwise."""
    if sp.issparse(M):
        if M.nnz == 0:
            return 0.0
        if max(M.shape) <= DENSE_SVD_MAX:
            M = M.toarray()
        else:
            return float(spla.svds(M.astype(float), k=1, which="LM", return_singular_vectors=False)[0])
    M = np.atleast_2d(np.asarray(M, dtype=float))
    return float(np.linalg.norm(M, 2)) if M.size else 0.0


@dataclass(frozen=True)
class QuadraticODE:
    """du/dt = F₀ + F₁u + F₂(u⊗u); F₀ shape (n,), F₁ (n, n), F₂ (n, n²) (dense or scipy.sparse)."""

    F0: np.ndarray
    F1: Any
    F2: Any

    @property
    def n(self) -> int:
        return int(np.asarray(self.F0).shape[0])

    def rhs(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=float)
        return np.asarray(self.F0, dtype=float) + self.F1 @ u + self.F2 @ np.kron(u, u)

    @classmethod
    def from_hessian(cls, g: np.ndarray, H: Any, beta: float = 0.0) -> QuadraticODE:
        """Gradient flow of L(u) = gᵀu + ½uᵀHu + (β/3)Σuᵢ³: F₀ = −g, F₁ = −H, F₂[i, i·n + i] = −β.

        β stands in for the third-derivative tensor, which is not computed for a real network (n³ entries);
        it is a modelling choice."""
        g = np.asarray(g, dtype=float).ravel()
        n = g.shape[0]
        F1 = -H if sp.issparse(H) else -np.asarray(H, dtype=float)
        if F1.shape != (n, n):
            raise ValueError(f"H must be {n}×{n}, got {F1.shape}")
        idx = np.arange(n)
        F2 = sp.csr_matrix((np.full(n, -float(beta)), (idx, idx * n + idx)), shape=(n, n * n))
        F2.eliminate_zeros()
        return cls(F0=-g, F1=F1, F2=F2)


def toy_problem(n: int, eig_range: tuple[float, float] = (0.5, 2.0), beta: float = 0.1, seed: int = 0,
                grad_scale: float = 0.0) -> QuadraticODE:
    """Toy GD model: H with eigenvalues linearly spread over ``eig_range`` in a seeded random orthonormal basis,
    cubic coefficient β, and a seeded random gradient of norm ``grad_scale`` at the reference point."""
    if n < 1:
        raise ValueError("n must be ≥ 1")
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    q = q * np.sign(np.diag(r))
    lo, hi = eig_range
    evals = np.linspace(lo, hi, n) if n > 1 else np.array([hi])
    H = (q * evals) @ q.T
    H = (H + H.T) / 2.0
    g = rng.standard_normal(n)
    g = grad_scale * g / np.linalg.norm(g)
    return QuadraticODE.from_hessian(g, H, beta)


def carleman_dim(n: int, order: int) -> int:
    """D_c = Σ_{k=1}^{N_c} nᵏ."""
    return int(sum(n**k for k in range(1, order + 1)))


def _kron_sum_term(F: sp.csr_matrix, n: int, j: int) -> sp.csr_matrix:
    """Σ_{p=1}^{j} I^{⊗(p−1)} ⊗ F ⊗ I^{⊗(j−p)} (shape n^j × n^{j+k−1})."""
    out = None
    for p in range(1, j + 1):
        term = sp.kron(sp.kron(sp.identity(n ** (p - 1), format="csr"), F), sp.identity(n ** (j - p), format="csr"))
        out = term if out is None else out + term
    assert out is not None, "j >= 1"
    return out.tocsr()


def carleman_matrix(ode: QuadraticODE, order: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """The order-N_c Carleman matrix A (CSR, D_c×D_c) and constant vector b (length D_c, only the first block
    is non-zero: b = (F₀, 0, …))."""
    if order < 1:
        raise ValueError("order must be ≥ 1")
    n = ode.n
    F0 = _as_csr(np.asarray(ode.F0, dtype=float).reshape(n, 1))
    F1 = _as_csr(ode.F1).astype(float)
    F2 = _as_csr(ode.F2).astype(float)
    dims = [n**j for j in range(1, order + 1)]
    blocks: list[list[Any]] = [[None] * order for _ in range(order)]
    for j in range(1, order + 1):
        blocks[j - 1][j - 1] = _kron_sum_term(F1, n, j)
        if j + 1 <= order:
            blocks[j - 1][j] = _kron_sum_term(F2, n, j)
        if j >= 2:
            blocks[j - 1][j - 2] = _kron_sum_term(F0, n, j)
    for j in range(order):  # bmat needs every block row/column to have its size fixed
        if blocks[j][j] is None:
            blocks[j][j] = sp.csr_matrix((dims[j], dims[j]))
    A = sp.bmat(blocks, format="csr")
    b = np.zeros(A.shape[0])
    b[:n] = np.asarray(ode.F0, dtype=float)
    return A, b


def carleman_vector(u: np.ndarray, order: int) -> np.ndarray:
    """y = (u, u⊗u, …, u^⊗N_c)."""
    u = np.asarray(u, dtype=float).ravel()
    parts, cur = [u], u
    for _ in range(order - 1):
        cur = np.kron(cur, u)
        parts.append(cur)
    return np.concatenate(parts)


def euler_map(A: Any, h: float) -> sp.csr_matrix:
    """M_c = I + hA."""
    A = _as_csr(A)
    return (sp.identity(A.shape[0], format="csr") + h * A).tocsr()


def carleman_euler(ode: QuadraticODE, u0: np.ndarray, h: float, T: int, order: int) -> np.ndarray:
    """Forward Euler on the truncated Carleman system; returns the first block (the parameters), shape (T+1, n)."""
    A, b = carleman_matrix(ode, order)
    M = euler_map(A, h)
    y = carleman_vector(u0, order)
    n = ode.n
    traj = [y[:n].copy()]
    for _ in range(int(T)):
        y = M @ y + h * b
        traj.append(y[:n].copy())
    return np.array(traj)


def gd_iterates(ode: QuadraticODE, u0: np.ndarray, h: float, T: int) -> np.ndarray:
    """Exact forward-Euler (= GD) iterates u_{m+1} = u_m + h(F₀ + F₁u_m + F₂(u_m⊗u_m)), shape (T+1, n)."""
    u = np.asarray(u0, dtype=float).ravel().copy()
    traj = [u.copy()]
    for _ in range(int(T)):
        u = u + h * ode.rhs(u)
        traj.append(u.copy())
    return np.array(traj)


def truncation_error(ode: QuadraticODE, u0: np.ndarray, h: float, T: int, orders: Any) -> dict[int, float]:
    """max_m ‖u_m^{Carleman, N_c} − u_m^{GD}‖₂ over the T steps, for every order N_c in ``orders``."""
    ref = gd_iterates(ode, u0, h, T)
    out = {}
    for order in orders:
        traj = carleman_euler(ode, u0, h, T, int(order))
        err = np.linalg.norm(traj - ref, axis=1)
        out[int(order)] = float(np.max(err)) if np.all(np.isfinite(err)) else math.inf
    return out


def r_number(ode: QuadraticODE, u0: np.ndarray) -> dict[str, Any]:
    """R = (‖u₀‖·‖F₂‖ + ‖F₀‖/‖u₀‖)/|Re λ₁|, λ₁ the eigenvalue of F₁ with the largest real part (PNAS code).

    R is only meaningful when Re λ₁ < 0 (``defined``); otherwise ``R`` is inf. ‖u₀‖ = 0 gives an infinite
    second term unless F₀ = 0 too. Keys: R, re_lambda1, defined, norm_u0, norm_F0, norm_F1, norm_F2."""
    F1: Any = ode.F1 if sp.issparse(ode.F1) else np.asarray(ode.F1, dtype=float)  # sparse or dense
    if F1.shape[0] <= DENSE_SVD_MAX:
        eig = np.linalg.eigvals(F1.toarray() if sp.issparse(F1) else F1)
    else:
        eig = spla.eigs(_as_csr(F1).astype(float), k=1, which="LR", return_eigenvectors=False)
    re1 = float(np.max(np.real(eig)))
    nu = float(np.linalg.norm(np.asarray(u0, dtype=float)))
    nf0 = float(np.linalg.norm(np.asarray(ode.F0, dtype=float)))
    nf2 = _spectral_norm(ode.F2)
    if nu > 0:
        num = nu * nf2 + nf0 / nu
    else:
        num = 0.0 if nf0 == 0 else math.inf
    defined = bool(re1 < 0)
    if defined:
        R = num / abs(re1)
    else:
        R = math.inf
    return {"R": float(R), "re_lambda1": re1, "defined": defined, "norm_u0": nu, "norm_F0": nf0,
            "norm_F1": _spectral_norm(F1), "norm_F2": nf2}


def step_guard(h: float, order: int, lam_max: float) -> dict[str, Any]:
    """PNAS step guard h ≤ 1/(N_c·λ_max) (λ_max = ‖F₁‖ = largest Hessian eigenvalue). Keys: h, h_max, ok."""
    h_max = math.inf if lam_max <= 0 else 1.0 / (order * lam_max)
    return {"h": float(h), "h_max": float(h_max), "ok": bool(h <= h_max)}


# Thresholds of the "almost dissipative" class: ours (the paper gives no numbers).
ALMOST_NEG_FRACTION = 0.05
ALMOST_NEG_MASS = 0.01


def dissipativity(eigs: Any, eta: float) -> dict[str, Any]:
    """Classify a Hessian spectrum for GD with step η (linear map M = I − ηH).

    * "dissipative": every eigenvalue has 0 < ηλ < 2 (so ‖M‖ ≤ 1 − δ with δ > 0);
    * "almost dissipative": no eigenvalue with ηλ ≥ 2, the fraction of negative eigenvalues ≤ 5 % and their
      spectral mass Σ|λ⁻|/Σ|λ| ≤ 1 % (thresholds ours; zero eigenvalues, i.e. marginal directions, also land
      here);
    * else "non-dissipative".

    Keys: lambda_min, lambda_max, negative_fraction, negative_mass, delta (= 1 − max|1 − ηλ|), eta, count,
    class."""
    lam = np.asarray(eigs, dtype=float).ravel()
    if lam.size == 0:
        raise ValueError("empty spectrum")
    neg = lam < 0
    total = float(np.sum(np.abs(lam)))
    neg_mass = float(np.sum(np.abs(lam[neg])) / total) if total > 0 else 0.0
    neg_frac = float(np.mean(neg))
    x = eta * lam
    delta = float(1.0 - np.max(np.abs(1.0 - x)))
    if np.all((x > 0) & (x < 2)):
        label = "dissipative"
    elif np.all(x < 2) and neg_frac <= ALMOST_NEG_FRACTION and neg_mass <= ALMOST_NEG_MASS:
        label = "almost dissipative"
    else:
        label = "non-dissipative"
    return {"lambda_min": float(lam.min()), "lambda_max": float(lam.max()), "negative_fraction": neg_frac,
            "negative_mass": neg_mass, "delta": delta, "eta": float(eta), "count": int(lam.size), "class": label}


# ---------------------------------------------------------------- history system (our construction)

def history_matrix(Mc: Any, T: int, idle: int = 0) -> sp.csr_matrix:
    """𝓛 = I − S⊗M for blocks Y = (y₀, …, y_{T+idle}): block row m (1 ≤ m ≤ T) is y_m − M_c y_{m−1}, block rows
    T+1 … T+idle are y_m − y_{m−1} (copies), block row 0 is y₀. Size (T+idle+1)·D_c, CSR."""
    Mc = _as_csr(Mc)
    d = Mc.shape[0]
    T, idle = int(T), int(idle)
    nblk = T + idle + 1
    S_euler = sp.diags([np.r_[np.ones(T), np.zeros(idle)]], [-1], shape=(nblk, nblk), format="csr")
    S_idle = sp.diags([np.r_[np.zeros(T), np.ones(idle)]], [-1], shape=(nblk, nblk), format="csr")
    L = sp.identity(nblk * d, format="csr") - sp.kron(S_euler, Mc) - sp.kron(S_idle, sp.identity(d))
    return L.tocsr()


def history_rhs(y0: np.ndarray, hb: np.ndarray, T: int, idle: int = 0) -> np.ndarray:
    """(y_init, hb, …, hb, 0, …, 0): T copies of hb, idle zeros."""
    y0 = np.asarray(y0, dtype=float).ravel()
    hb = np.broadcast_to(np.asarray(hb, dtype=float).ravel(), y0.shape)
    return np.concatenate([y0, *([hb] * int(T)), *([np.zeros_like(y0)] * int(idle))])


def singular_range(L: Any) -> tuple[float, float]:
    """(σ_min, σ_max): dense SVD up to :data:`DENSE_SVD_MAX`, else ``svds`` for σ_max and shift-invert
    ``eigsh`` of LᵀL at 0 for σ_min."""
    if sp.issparse(L) and max(L.shape) > DENSE_SVD_MAX:
        L = L.tocsc().astype(float)
        smax = float(spla.svds(L, k=1, which="LM", return_singular_vectors=False)[0])
        G = (L.T @ L).tocsc()
        try:
            lmin = float(spla.eigsh(G, k=1, sigma=0.0, which="LM", return_eigenvectors=False)[0])
        except RuntimeError:  # exactly singular: the factorisation fails
            lmin = 0.0
        return math.sqrt(max(lmin, 0.0)), smax
    dense = L.toarray() if sp.issparse(L) else np.asarray(L, dtype=float)
    s = scipy.linalg.svdvals(dense)
    return float(s[-1]), float(s[0])


def kappa(L: Any) -> float:
    smin, smax = singular_range(L)
    return math.inf if smin <= 0 else smax / smin


def history_kappa(M: Any, T: int, idle: int = 0) -> float:
    """κ(𝓛) = σ_max/σ_min of :func:`history_matrix` (M, T, idle)."""
    return kappa(history_matrix(M, T, idle))


def kappa_vs_T(M: Any, Ts: Any, idle: int | None = 0) -> list[dict[str, Any]]:
    """κ(𝓛) for every T; ``idle`` = None means P = T. Rows: T, idle, dim, kappa, sigma_min, sigma_max."""
    rows = []
    for T in Ts:
        P = int(T) if idle is None else int(idle)
        L = history_matrix(M, int(T), P)
        smin, smax = singular_range(L)
        rows.append({"T": int(T), "idle": P, "dim": int(L.shape[0]), "kappa": math.inf if smin <= 0 else smax / smin,
                     "sigma_min": smin, "sigma_max": smax})
    return rows


# ---------------------------------------------------------------- HHL embedding

def dilate(L: Any) -> Any:
    """Hermitian dilation [[0, L], [Lᵀ, 0]] (eigenvalues ±σᵢ(L)); sparse in, CSR out; dense in, dense out.
    D·(0, x) = (Lx, 0), so L x = r is D z = (r, 0) with z = (0, x)."""
    if sp.issparse(L):
        return sp.bmat([[None, L], [L.T, None]], format="csr")
    L = np.asarray(L)
    m, k = L.shape
    return np.block([[np.zeros((m, m), dtype=L.dtype), L], [L.conj().T, np.zeros((k, k), dtype=L.dtype)]])


def pad_pow2(A: Any, fill: float | None = None) -> Any:
    """Pad a square matrix to the next power of two with fill·I on the new diagonal. ``fill`` must lie in
    [σ_min, σ_max] (in absolute value) so that κ is unchanged; default √(σ_min·σ_max)."""
    N = A.shape[0]
    target = 1 << max(0, math.ceil(math.log2(N))) if N > 1 else 1
    if fill is None:
        smin, smax = singular_range(A)
        fill = math.sqrt(smin * smax)
    extra = target - N
    if extra == 0:
        return A.copy()
    if sp.issparse(A):
        return sp.block_diag([A, fill * sp.identity(extra)], format="csr")
    A = np.asarray(A)
    out = np.zeros((target, target), dtype=np.result_type(A.dtype, float))
    out[:N, :N] = A
    out[N:, N:] = fill * np.eye(extra)
    return out
