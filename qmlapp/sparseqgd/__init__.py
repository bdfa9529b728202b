"""Sparse, dissipative (stochastic) gradient descent on a quantum computer via Carleman linearisation
(Liu et al., Nature Communications 15, 434 (2024); base algorithm Liu et al., PNAS 118 (2021)).

* :mod:`.carleman` (NumPy/SciPy): the quadratic model du/dt = F₀ + F₁u + F₂(u⊗u) of GD around a reference
  point, the Carleman matrix, Carleman+Euler against the exact GD iterates, the R-number, the step guard,
  the dissipativity classification of a Hessian spectrum, the discrete history system 𝓛 = I − S⊗M (our
  construction, the paper leaves the discrete-time version open) with its condition number, and the
  Hermitian dilation / power-of-two padding needed by HHL.
* :mod:`.small_solve` (Cirq + qsimcirq): a tiny history system solved by HHL on qsim ("simulated") and the
  same algorithm emulated exactly in the eigenbasis ("emulated").
* :mod:`.cost` (pure Python/NumPy): the per-window qubit / query / I/O cost model and the paper-scale
  extrapolation (every number there is "estimated").
"""
