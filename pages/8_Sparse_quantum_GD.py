import streamlit as st

from qmlapp.ui.sparse_qgd_view import sparse_qgd_page

st.set_page_config(page_title="Sparse quantum GD · QML Explorer", page_icon="🌿", layout="wide")
sparse_qgd_page()
