"""Each experiment family's form, submitted in a real browser: progress reaches the end, the result shows."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page

RUN_TIMEOUT_MS = 600_000


def _open(page: Page, url: str, path: str, text: str) -> None:
    page.goto(url + path, timeout=60_000)
    page.get_by_text(text).first.wait_for(timeout=60_000)


def _set_number(page: Page, label: str, value: object) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Tab")
    time.sleep(0.3)


def _select(page: Page, label: str, option: str) -> None:
    page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first.click()
    page.get_by_role("option", name=option, exact=True).click()
    time.sleep(0.3)


def _submit(page: Page, button: str = "Run") -> None:
    page.get_by_role("button", name=button, exact=True).click()
    page.get_by_text(re.compile(r"Queued run \d+")).wait_for(timeout=30_000)


def test_qnn_form_runs_to_the_end(page: Page, app_url: str) -> None:
    _open(page, app_url, "/QNN", "QNN classifier")
    _set_number(page, "epochs", 3)
    _submit(page)
    page.get_by_text("export run (JSON)").first.wait_for(timeout=RUN_TIMEOUT_MS)  # shown once finished
    assert "Traceback" not in page.inner_text("body")


def test_hypernet_depth_study_shows_success_landscape_and_network(page: Page, app_url: str) -> None:
    _open(page, app_url, "/Hypernetworks", "18 bits = 18 qubits")
    _select(page, "problem", "custom")
    _set_number(page, "restarts", 2)
    _set_number(page, "depth study (code depths)", "1, 2")
    page.get_by_role("button", name=re.compile("Run depth study")).click()
    page.get_by_text(re.compile(r"Queued run \d+")).wait_for(timeout=30_000)
    page.get_by_text("Landscape (every network, computed)").wait_for(timeout=RUN_TIMEOUT_MS)
    page.get_by_text("best network found").first.wait_for()
    assert "Traceback" not in page.inner_text("body")


def test_qnetwork_inference_counts_qubits_and_bits(page: Page, app_url: str) -> None:
    _open(page, app_url, "/Quantum_network", "Distributed learning over a quantum network")
    _set_number(page, "n features", 256)
    _submit(page)
    page.get_by_text("Communication per inference", exact=True).wait_for(timeout=RUN_TIMEOUT_MS)
    page.get_by_text("qubits (quantum protocol)").wait_for()
    page.get_by_text("Linear classifier vs deep model").wait_for()


def test_qnewton_shows_kappa_and_hhl(page: Page, app_url: str) -> None:
    _open(page, app_url, "/Q-Newton", "Newton training where every")
    _set_number(page, "epochs", 1)
    _submit(page)
    page.get_by_text("solves: quantum / classical").wait_for(timeout=RUN_TIMEOUT_MS)
    assert "Traceback" not in page.inner_text("body")


def test_sparse_qgd_trains_prunes_and_estimates(page: Page, app_url: str) -> None:
    _open(page, app_url, "/Sparse_quantum_GD", "Gradient descent is a nonlinear")
    _set_number(page, "dense epochs", 2)
    _set_number(page, "sparse epochs", 2)
    _submit(page)
    page.get_by_text("Paper scale (estimated)").wait_for(timeout=RUN_TIMEOUT_MS)
    page.get_by_text("Small real solve (simulated)").wait_for()


def test_runs_page_lists_every_run_and_compare_opens(page: Page, app_url: str) -> None:
    _open(page, app_url, "/Runs", "Runs")
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60_000)
    _open(page, app_url, "/Compare", "Compare")
    assert "Traceback" not in page.inner_text("body")
