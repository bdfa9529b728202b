"""The ``toy`` kind's page and run-view section (a real kind's lives in ``qmlapp/ui/kinds/<name>.py``)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from db import RunRecord
from qmlapp.ui.forms import kind_form
from toykind.plots import result_figures
from toykind.spec import ToySpec


def page() -> None:
    st.title("📏 Toy line fit")
    st.markdown("Fits the slope of a line through noisy points by gradient descent.")
    kind_form("toy", key="toy")


def results(run: RunRecord, detail: Any) -> None:
    for i, fig in enumerate(result_figures(run.result or {}, ToySpec.from_dict(run.spec))):
        st.plotly_chart(fig, key=f"toy_{run.id}_{i}")
