"""QML Explorer home page. Start with `make run` (app + embedded worker) or `python -m qmlapp serve`."""

import streamlit as st

from qmlapp.ui.pages import home_page

st.set_page_config(page_title="QML Explorer", page_icon="⚛️", layout="wide")
home_page()
