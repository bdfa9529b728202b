import streamlit as st

from qmlapp.ui.hypernet_view import hypernet_page

st.set_page_config(page_title="Quantum hypernetworks · QML Explorer", page_icon="🧬", layout="wide")
hypernet_page()
