"""Each experiment family's form, submitted in a real browser: progress reaches the end, the result shows;
a sweep started from the Sweeps page runs to its end, two runs are compared, a running run is cancelled.

The tests share one app and run in file order (the compare test uses the runs of the ones before it).
"""

from __future__ import annotations

import re
import time

from conftest import NETWORK_PASSWORD
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
    # Long enough to watch: a warm worker trains the default 4-qubit iris model at ~0.1 s per epoch.
    _set_number(page, "epochs", 250)
    _submit(page)
    # The live progress bar moves through training before the result replaces it.
    page.locator('[data-testid="stProgress"]').filter(has_text=re.compile(r"running: epoch \d+")).first.wait_for(
        timeout=RUN_TIMEOUT_MS)
    page.get_by_text("export run (JSON)").first.wait_for(timeout=RUN_TIMEOUT_MS)  # shown once finished
    assert page.locator('[data-testid="stProgress"]').count() == 0
    assert "Traceback" not in page.inner_text("body")


def test_sweep_started_from_the_page_runs_every_trial(page: Page, app_url: str) -> None:
    _open(page, app_url, "/Sweeps", "Sweeps")
    _select(page, "preset", "Iris: learning rate, depth and entanglement with TPE (Moussa-style)")
    _set_number(page, "trials", 3)
    page.get_by_role("button", name="Start sweep").click()
    page.get_by_text(re.compile(r"Started sweep \d+")).wait_for(timeout=30_000)
    page.get_by_role("tab", name="Sweeps").click()
    page.get_by_text("3 of 3 trials finished").wait_for(timeout=RUN_TIMEOUT_MS)
    page.get_by_text(re.compile(r"status \*?\*?succeeded")).or_(page.get_by_text("status succeeded")).first.wait_for(
        timeout=60_000)
    assert "Traceback" not in page.inner_text("body")


def test_compare_two_runs_overlays_curves_and_diffs_specs(page: Page, app_url: str) -> None:
    _open(page, app_url, "/Compare", "Compare runs")
    page.locator('[data-testid="stMultiSelect"]').filter(has_text="kind").first.click()
    page.get_by_role("option", name="qnn", exact=True).click()
    page.keyboard.press("Escape")
    runs = page.locator('[data-testid="stMultiSelect"]').filter(has_text="runs").first
    runs.wait_for(timeout=60_000)
    # Keep exactly two runs selected: remove the third of the default choices.
    tags = runs.locator("[data-tag]")
    tags.first.wait_for(timeout=30_000)
    while tags.count() > 2:
        tags.last.get_by_role("button", name=re.compile("^Remove")).click()
        time.sleep(1.0)
    assert tags.count() == 2
    page.get_by_text(re.compile(r"[1-9]\d* spec field\(s\) differ")).wait_for(timeout=60_000)
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=60_000)
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


def test_a_running_run_is_cancelled_from_the_runs_page(page: Page, app_url: str) -> None:
    _open(page, app_url, "/QNN", "QNN classifier")
    _set_number(page, "epochs", 5000)  # many minutes unless cancelled
    _submit(page)
    page.locator('[data-testid="stProgress"]').filter(has_text=re.compile(r"running: epoch \d+")).first.wait_for(
        timeout=RUN_TIMEOUT_MS)
    _open(page, app_url, "/Runs", "Runs")
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60_000)
    # The newest run is opened below the table, with its live progress bar.
    page.locator('[data-testid="stProgress"]').filter(has_text=re.compile(r"running: epoch \d+/5000")).first.wait_for(
        timeout=60_000)
    page.get_by_role("button", name="Cancel run").click()
    page.locator("text=cancelled by user >> visible=true").first.wait_for(timeout=120_000)  # not the table cell
    assert "Traceback" not in page.inner_text("body")


def test_password_login_when_bound_to_the_network(page: Page, network_app_url: str) -> None:
    page.goto(network_app_url, timeout=60_000)
    box = page.get_by_label("Password", exact=True)
    box.wait_for(timeout=60_000)
    assert "Recent runs" not in page.inner_text("body")
    box.fill("not-it")
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("wrong password").wait_for(timeout=30_000)
    page.get_by_label("Password", exact=True).fill(NETWORK_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("button", name="Log out").wait_for(timeout=30_000)
    assert page.get_by_label("Password", exact=True).count() == 0
