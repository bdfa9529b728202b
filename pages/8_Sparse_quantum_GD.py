from qmlapp.ui.auth import run_page, setup_page
from qmlapp.ui.sparse_qgd_view import sparse_qgd_page

setup_page("Sparse quantum GD · QML Explorer", "🌿")
run_page(sparse_qgd_page)
