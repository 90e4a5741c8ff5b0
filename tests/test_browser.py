"""The release as a student meets it: JupyterLab in a real browser (Debian's Chromium, headless,
driven by Selenium through Debian's chromedriver).

The release folder is copied with the reference solutions filled in, a short final model and its
plots (the corpus's quick reference skips every plotting cell; the final model's plots are put back
so that the page has figures to render); JupyterLab serves it, the browser runs every cell through
the Run menu, and the test checks what the page shows. Screenshots of the executed notebook, one of
them centred on each figure the lab draws to teach (the derived features, the modes of operation,
MSE against MAE, the shuffling experiment), are kept in tests/screenshots/ (gitignored). Without
chromium or chromedriver the test is skipped, or fails when CI is set.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from jena_weather.data import ENV_MIRROR, ENV_NO_DOWNLOAD
from servers import running_jupyter
from test_notebook import RELEASE, SUMMARY, expected_prints, kernel_env, reference_notebook

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
SHOWN_PLOTS = ("shuffle_experiment", "final_model_plots")  # exploration cells the quick reference skips, run here
# Cells the quick reference runs whose figures teach the lab: each must be rendered, and gets a screenshot.
TEACHING_FIGURES = ("feature_picture", "modes_diagram", "loss_comparison", "shuffle_experiment")
RUN_TIMEOUT = 300  # seconds for Run All (the short final model takes well under a minute on one thread)
# JupyterLab settings for a quiet, fully rendered notebook: every cell in the page (no windowing),
# no news or update checks.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}

# A student's JupyterLab has no nbgrader: its server extensions (installed here for the instructor) stay off.
SERVER_CONFIG = {"ServerApp": {"jpserver_extensions": {f"nbgrader.server_extensions.{name}": False for name in
                                                       ("formgrader", "validate_assignment", "assignment_list", "course_list")}}}
PAGE_CONFIG = {"disabledExtensions": {"@jupyter/nbgrader": True}}  # nor its JupyterLab menus


@pytest.fixture
def lab_folder(tmp_path, hourly_file) -> Path:
    """The release folder with the reference solutions, a short final model and its plots filled in."""
    folder = tmp_path / "course" / RELEASE.parent.name
    shutil.copytree(RELEASE.parent, folder)
    notebook = reference_notebook(quick=True)
    released = {c.id: c.source for c in nbformat.read(RELEASE, as_version=4).cells}
    for cell in notebook.cells:
        if cell.id in SHOWN_PLOTS:
            cell.source = released[cell.id]
    assert sum(cell.id in SHOWN_PLOTS for cell in notebook.cells) == len(SHOWN_PLOTS)
    nbformat.write(notebook, folder / RELEASE.name)
    return folder


@pytest.fixture
def jupyterlab(lab_folder, tmp_path, hourly_file):
    """A JupyterLab server on a free loopback port with a token, its state in tmp_path; yields its URL."""
    state = tmp_path / "jupyter"
    for name, settings in LAB_SETTINGS.items():
        path = state / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    (state / "config").mkdir()
    (state / "config" / "jupyter_server_config.json").write_text(json.dumps(SERVER_CONFIG))
    (state / "config" / "labconfig").mkdir()
    (state / "config" / "labconfig" / "page_config.json").write_text(json.dumps(PAGE_CONFIG))
    env = kernel_env(**{
        ENV_MIRROR: str(hourly_file.parent), ENV_NO_DOWNLOAD: "1",
        "JUPYTER_CONFIG_DIR": str(state / "config"), "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
    })
    with running_jupyter(["jupyterlab"], lab_folder, env, tmp_path / "jupyterlab.log",
                         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate") as (url, token):
        yield url, token


@pytest.fixture
def browser(chromium):
    return chromium(window="1400,1800")


def _prompts(driver) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')]"
                                 ".map(p => p.textContent.trim());")


def _error_outputs(driver) -> list:
    """Error tracebacks and stderr streams (JupyterLab renders both with this MIME type)."""
    from selenium.webdriver.common.by import By

    return driver.find_elements(
        By.CSS_SELECTOR, ".jp-NotebookPanel .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")


def _kernel_ready(driver) -> bool:
    """The notebook's kernel is started and idle. (Before a kernel is attached the toolbar says
    "No Kernel" while the execution indicator already says idle.)"""
    return driver.execute_script("""
        const name = document.querySelector('.jp-NotebookPanel-toolbar [data-jp-item-name="kernelName"]');
        const status = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
        return !!name && name.textContent.trim() !== '' && name.textContent.trim() !== 'No Kernel'
            && !!status && status.getAttribute('data-status') === 'idle';
    """)


def _executed(driver) -> bool:
    """Every code cell shows an execution count (none is queued or running) and the kernel is idle."""
    return driver.execute_script("""
        const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')]
            .map(p => p.textContent.trim());
        const status = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
        const idle = !status || status.getAttribute('data-status') === 'idle';
        return prompts.length > 0 && idle && prompts.every(p => /^\\[\\d+\\]:$/.test(p));
    """)


def _rendered(driver, image) -> bool:
    return driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0;", image)


def test_release_runs_all_cells_in_jupyterlab(browser, jupyterlab, lab_folder):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    url, token = jupyterlab
    start = time.perf_counter()
    browser.get(f"{url}/lab/tree/{RELEASE.name}?token={token}")
    wait = WebDriverWait(browser, 120)
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell")))
    wait.until(_kernel_ready)

    # Run > Run All Cells, through the menu bar as a student would.
    run_menu = wait.until(ready.element_to_be_clickable(
        (By.XPATH, "//li[contains(@class, 'lm-MenuBar-item')][.//div[normalize-space()='Run']]")))
    run_menu.click()
    wait.until(ready.element_to_be_clickable(
        (By.CSS_SELECTOR, "li.lm-Menu-item[data-command='runmenu:run-all']"))).click()
    WebDriverWait(browser, 30).until(lambda d: not _executed(d))  # the run has started
    try:
        WebDriverWait(browser, RUN_TIMEOUT, poll_frequency=1).until(_executed)
    except TimeoutException:
        SCREENSHOTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(SCREENSHOTS / "release_timeout.png"))
        pytest.fail(f"Run All did not finish within {RUN_TIMEOUT} s; prompts: {' '.join(_prompts(browser))}; "
                    f"page errors: {[e.text[:300] for e in _error_outputs(browser)]}")
    print(f"Run All Cells in JupyterLab: {time.perf_counter() - start:.1f} s")

    notebook = browser.find_element(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Notebook")
    text = notebook.text
    errors = _error_outputs(browser)
    figures = browser.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-OutputArea-output img")

    SCREENSHOTS.mkdir(exist_ok=True)
    summary = browser.find_element(By.XPATH, "//pre[contains(., 'kept for grading')]")
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'});", summary)
    browser.save_screenshot(str(SCREENSHOTS / "release_top.png"))
    if figures:
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", figures[-1])
    browser.save_screenshot(str(SCREENSHOTS / "release_executed.png"))
    # The teaching figures, each in a screenshot of its own: the page lists every cell (no windowing), in order.
    order = [cell.id for cell in nbformat.read(lab_folder / RELEASE.name, as_version=4).cells]
    page_cells = browser.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Notebook .jp-Cell")
    assert len(page_cells) == len(order), f"the page shows {len(page_cells)} cells, the notebook has {len(order)}"
    teaching = {}
    for cell in TEACHING_FIGURES:
        teaching[cell] = page_cells[order.index(cell)].find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img")
        if teaching[cell]:
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", teaching[cell][0])
            with contextlib.suppress(TimeoutException):  # a figure that never renders is reported below
                WebDriverWait(browser, 10).until(lambda d, image=teaching[cell][0]: _rendered(d, image))
            browser.save_screenshot(str(SCREENSHOTS / f"release_{cell}.png"))

    assert not errors, "error output on the page:\n" + "\n---\n".join(e.text[:500] for e in errors)
    assert SUMMARY.search(text), "the data summary is shown"
    # What the cells printed (the outputs only: every visible check's docstring names its message too).
    printed = browser.execute_script("return [...document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-output')]"
                                     ".map(o => o.innerText).join('\\n');")
    assert "shapes OK" in printed and "final_model OK" in printed
    missing = {cell: line for cell, line in expected_prints(nbformat.read(RELEASE, as_version=4)).items() if line not in printed}
    assert not missing, f"cells of visible checks whose message the page does not show under them: {missing}"
    assert figures and all(f.get_attribute("src").startswith("data:image/png") for f in figures)
    assert browser.execute_script("return arguments[0].naturalWidth;", figures[-1]) > 0, "the figure is rendered"
    missing = [cell for cell, images in teaching.items() if not images or not all(_rendered(browser, i) for i in images)]
    assert not missing, f"cells whose figures the page does not show rendered: {missing}"
