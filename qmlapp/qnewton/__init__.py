"""Q-Newton: Newton training whose Hessian solves are scheduled to a quantum or a classical linear solver
(Li, Liu, Wang & Chen 2024, arXiv 2405.00252).

:mod:`.linalg` (NumPy/SciPy only, cheap to import) prunes and regularises each Hessian block, computes its
condition number (exact and the Merikoski et al. determinant/Frobenius bound), the explicit-constant QLSA
query count, the estimated quantum and measured classical solve times, and the scheduler's choice.
:mod:`.hhl` runs the HHL algorithm for real on qsim (Cirq + qsimcirq) on small Hessian-like matrices, to
show what the cost model abstracts away: the success probability falling with κ and the fidelity against
the number of clock qubits.

What is real and what is estimated: every Newton update uses the classical solve H̃⁻¹g (a quantum solver
would return the same vector up to ε), so training is identical whichever solver is "chosen"; only the
time charged for the solve differs. Classical times are measured on this machine; quantum times are a
formula (query count × gates per query × gate time).
"""
