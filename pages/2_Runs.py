import streamlit as st

from qmlapp.ui.pages import runs_page

st.set_page_config(page_title="Runs · QML Explorer", page_icon="📋", layout="wide")
runs_page()
