import streamlit as st

from qmlapp.ui.qnewton_view import qnewton_page

st.set_page_config(page_title="Q-Newton · QML Explorer", page_icon="🧮", layout="wide")
qnewton_page()
