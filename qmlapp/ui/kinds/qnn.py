"""QNN classifier page and the qnn sections of the run view."""

from __future__ import annotations

from typing import Any, cast

import streamlit as st

from db import RunRecord
from qmlapp.kinds.qnn.plots import confusion_info, plot_confusion_matrix
from qmlapp.kinds.qnn.result import QnnResult
from qmlapp.ui.forms import kind_form


def page() -> None:
    st.title("🧪 QNN classifier")
    st.markdown(
        "One configuration of a variational quantum classifier: classical features are reduced to one per "
        "qubit, encoded into a circuit, processed by a trainable ansatz and read out as class scores. "
        "Training uses TFQ's qsim ops with adjoint gradients (adam/sgd) or gradient-free optimisers "
        "(COBYLA, Nelder–Mead, SPSA), where *epochs* counts iterations."
    )
    kind_form("qnn", key="qnn", rest=True)


def results(run: RunRecord, detail: Any) -> None:
    result = cast(QnnResult, run.result or {})  # runs stored by older versions may lack keys added since
    if result.get("noisy"):
        st.caption(f"Noise (simulated): {result.get('noise_model')} — {result.get('noise_simulation')}.")
    if result.get("init_mode") == "authors":
        st.caption("Initialisation in the authors' behaviour: the chosen init had no effect and training "
                   "started from U[0,1), reproducing the bug in the original code.")
    cm = confusion_info(result)
    if cm is not None:
        st.plotly_chart(plot_confusion_matrix(cm), key=f"cm_{run.id}")
