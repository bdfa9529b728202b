import streamlit as st

from qmlapp.ui.sweeps_view import sweeps_page

st.set_page_config(page_title="Sweeps · QML Explorer", page_icon="🧭", layout="wide")
sweeps_page()
