import streamlit as st

from qmlapp.ui.qnetwork_view import qnetwork_page

st.set_page_config(page_title="Quantum network · QML Explorer", page_icon="🛰️", layout="wide")
qnetwork_page()
