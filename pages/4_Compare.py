import streamlit as st

from qmlapp.ui.compare_view import compare_page

st.set_page_config(page_title="Compare · QML Explorer", page_icon="📊", layout="wide")
compare_page()
