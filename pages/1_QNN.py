import streamlit as st

from qmlapp.ui.pages import qnn_page

st.set_page_config(page_title="QNN classifier · QML Explorer", page_icon="🧪", layout="wide")
qnn_page()
