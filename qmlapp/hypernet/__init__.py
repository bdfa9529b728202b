"""Quantum hypernetworks (Carrasquilla et al. 2023; Nepote et al. 2025): bit layouts, problems,
cost landscapes, the brickwork circuit engine and training. See ``qmlapp.experiments.hypernet``."""
