from qmlapp.ui.auth import setup_page
from qmlapp.ui.sparse_qgd_view import sparse_qgd_page

setup_page("Sparse quantum GD · QML Explorer", "🌿")
sparse_qgd_page()
