"""The bootcamp server in a real browser: `lanalab serve` for a roster of two participants
and an instructor, Debian's chromium (headless, through chromedriver) logging both
participants in at once, each running all of notebook 01 in their own JupyterLab, under
their own uid, in their own folder, with their lab made by the hub's lab service under
that uid; screenshots taken and checked. Then what a participant must not do: log in
with a wrong token, open the other's server, read the other's folder; the instructor sees
both on the hub's admin page. Stopping the hub stops every participant's server, the
proxy and the lab service."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hubrun import Hub, as_participant, processes_of, started_hub, stop_hub

from lab.polling import poll

pytestmark = [pytest.mark.root, pytest.mark.vm, pytest.mark.slow]

selenium = pytest.importorskip("selenium", reason="the hub extra: pip install -e '.[hub]'")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
ROSTER = "id,name,role\nalice,Alice Example\nbob,Bob Example\nteach,The Teacher,instructor\n"
NOTEBOOK = "notebooks/01-first-stack.ipynb"
CELLS = len(json.loads((REPO / NOTEBOOK).read_text())["cells"])
WAIT_S = 600.0  # a JupyterLab start, or a lab's bring-up, on a loaded 2-core machine
SOLUTION = REPO / "exercises" / "01-first-stack" / "solution"


@pytest.fixture(scope="module")
def hub() -> Iterator[Hub]:
    with started_hub(ROSTER) as hub:
        with open(hub.state / "TOKENS.csv") as f:
            hub.tokens = {row["id"]: row["token"] for row in csv.DictReader(f)}
        yield hub


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    return webdriver.Chrome(service=Service(driver), options=options)


def log_in(driver: webdriver.Chrome, hub: Hub, pid: str, token: str) -> None:
    driver.get(f"{hub.url}/hub/login")
    driver.find_element(By.ID, "username_input").send_keys(pid)
    driver.find_element(By.ID, "password_input").send_keys(token)
    driver.find_element(By.ID, "login_submit").click()


@dataclass
class Session:
    pid: str
    login_to_first_cell_s: float = 0.0
    login_to_end_s: float = 0.0
    output: str = ""
    screenshot: Path | None = None
    error: str = ""


def hand_in_the_solution(hub: Hub, pid: str) -> Path:
    """What the participant wrote by now: exercise 1's right stack.sh in their folder."""
    work = hub.state / "home" / pid / "notebooks" / "work" / "01-first-stack"
    shutil.copytree(SOLUTION, work, dirs_exist_ok=True)
    uid = hub.uids[pid]
    for path in [work.parent, work, *work.iterdir()]:
        os.chown(path, uid, uid)
    return work


def run_notebook(hub: Hub, session: Session, shots: Path) -> None:
    """Log in, open notebook 01 and run every cell (Shift+Enter down the notebook); wait
    for the first cell's output, then for the last cell's (`lab.down()`)."""
    driver = browser()
    try:
        start = time.monotonic()
        log_in(driver, hub, session.pid, hub.tokens[session.pid])
        WebDriverWait(driver, WAIT_S).until(
            lambda d: d.current_url.startswith(f"{hub.url}/user/{session.pid}/lab"))
        hand_in_the_solution(hub, session.pid)  # the server made the folder
        driver.get(f"{hub.url}/user/{session.pid}/lab/tree/{NOTEBOOK}")
        wait = WebDriverWait(driver, WAIT_S)
        wait.until(kernel_idle)
        driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")[0].click()
        keys = ActionChains(driver)
        for _ in range(CELLS):
            keys.key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT)
        keys.perform()
        wait.until(lambda d: "stack.sh" in outputs(d))
        session.login_to_first_cell_s = time.monotonic() - start
        wait.until(lambda d: "lab 'bench' is down" in outputs(d) or "Traceback" in outputs(d))
        session.login_to_end_s = time.monotonic() - start
        session.output = outputs(driver)
        session.screenshot = shots / f"{session.pid}.png"
        driver.save_screenshot(str(session.screenshot))
    except Exception as exc:  # reported by the test, with the hub's log
        session.error = f"{type(exc).__name__}: {exc}"
    finally:
        driver.quit()


def kernel_idle(driver: webdriver.Chrome) -> bool:
    """The status bar shows the notebook's kernel, `LANA lab (...) | Idle`, once it runs."""
    bars = driver.find_elements(By.ID, "jp-main-statusbar")
    return bool(bars) and "Idle" in bars[0].text


def outputs(driver: webdriver.Chrome) -> str:
    return "\n".join(e.text for e in driver.find_elements(By.CSS_SELECTOR,
                                                          ".jp-OutputArea-output"))


def screenshot_shows_the_notebook(path: Path) -> None:
    """A real page, not a blank or error one: the size asked for and many colours."""
    from matplotlib import image

    pixels = image.imread(path)
    assert pixels.shape[0] >= 800 and pixels.shape[1] >= 1300, pixels.shape
    colours = {tuple(p) for p in pixels[::7, ::7, :3].reshape(-1, 3).round(2).tolist()}
    assert len(colours) > 50, f"{path}: {len(colours)} colours, a blank page?"


def test_two_participants_run_notebook_01_at_once(hub: Hub, tmp_path: Path) -> None:
    sessions = [Session("alice"), Session("bob")]
    threads = [threading.Thread(target=run_notebook, args=(hub, s, tmp_path))
               for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for session, other in zip(sessions, reversed(sessions), strict=True):
        assert not session.error, f"{session.pid}: {session.error}\n" + \
            hub.log.read_text()[-4000:]
        own = hub.state / "home" / session.pid / "notebooks" / "work" / "01-first-stack"
        assert f"{own}/stack.sh" in session.output, session.output
        assert f"/home/{other.pid}/" not in session.output
        assert "lab up (lab service, lab" in session.output, session.output[-3000:]
        assert "sent 25 frames" in session.output, session.output[-3000:]
        assert "all checks passed" in session.output, session.output[-3000:]
        assert (own / "stack.sh").stat().st_uid == hub.uids[session.pid]
        assert session.screenshot is not None
        screenshot_shows_the_notebook(session.screenshot)
        print(f"{session.pid}: login to first cell output {session.login_to_first_cell_s:.1f} s"
              f", to the notebook's end {session.login_to_end_s:.1f} s, screenshot "
              f"{session.screenshot}")
    # each server runs under its participant's uid, none as root
    for session in sessions:
        uid = hub.uids[session.pid]
        assert any("jupyterhub-singleuser" in line for line in processes_of({uid})), \
            session.pid


def test_participants_cannot_reach_each_other(hub: Hub) -> None:
    driver = browser()
    try:
        log_in(driver, hub, "alice", hub.tokens["bob"])  # bob's token is not alice's
        WebDriverWait(driver, 60).until(
            lambda d: "Invalid username or password" in d.page_source)
        log_in(driver, hub, "alice", hub.tokens["alice"])
        WebDriverWait(driver, WAIT_S).until(lambda d: "/user/alice/" in d.current_url)
        driver.get(f"{hub.url}/user/bob/api/contents/notebooks")
        WebDriverWait(driver, 60).until(lambda d: "Forbidden" in d.page_source)
        assert "01-first-stack.ipynb" not in driver.page_source
    finally:
        driver.quit()
    alice = hub.uids["alice"]
    denied = subprocess.run(["setpriv", f"--reuid={alice}", f"--regid={alice}",
                             "--clear-groups", "ls", str(hub.state / "home" / "bob")],
                            capture_output=True, text=True, check=False)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr, denied
    listing = subprocess.run(["setpriv", f"--reuid={alice}", f"--regid={alice}",
                              "--clear-groups", "ls", str(hub.state / "home")],
                             capture_output=True, text=True, check=False)
    assert listing.returncode != 0, listing  # cannot even list who else has a folder
    tokens = subprocess.run(["setpriv", f"--reuid={alice}", f"--regid={alice}",
                             "--clear-groups", "cat", str(hub.state / "TOKENS.csv"),
                             str(hub.state / "accounts.json")],
                            capture_output=True, text=True, check=False)
    assert tokens.returncode != 0 and not tokens.stdout, tokens


def test_instructor_sees_every_participant(hub: Hub) -> None:
    driver = browser()
    try:
        log_in(driver, hub, "teach", hub.tokens["teach"])
        WebDriverWait(driver, WAIT_S).until(lambda d: "/user/teach/" in d.current_url)
        driver.get(f"{hub.url}/hub/admin")
        WebDriverWait(driver, 120).until(
            lambda d: "alice" in d.page_source and "bob" in d.page_source)
    finally:
        driver.quit()


def test_the_instructor_grades_every_participant(hub: Hub) -> None:
    """After the notebooks: the instructor grades exercise 1 for the whole class from the
    work folders (read by the service as their owners); a participant may not."""
    refused = as_participant(hub, "bob", "grade", "1", "--participants", "--out", "g")
    assert refused.returncode != 0 and "for instructors only" in refused.stderr, refused
    done = as_participant(hub, "teach", "grade", "1", "--participants", "--out", "grades")
    assert done.returncode == 0, done.stdout + done.stderr
    with open(hub.state / "home" / "teach" / "grades" / "gradebook.csv") as f:
        book = {row["Student ID"]: row for row in csv.DictReader(f)}
    for pid in ("alice", "bob"):  # both handed in the right stack.sh
        assert book[pid]["Status"] == "graded" and book[pid]["Total"] == book[pid]["Max"], \
            book[pid]
    assert book["teach"]["Total"] in ("", "0"), book["teach"]  # no work of their own
    report = hub.state / "home" / "teach" / "grades" / "students" / "alice" / "report.txt"
    assert report.stat().st_uid == hub.uids["teach"]
    from lab.hub.labservice import socket_path

    log = socket_path(hub.state).parent / "refusals.jsonl"
    assert any(json.loads(line)["uid"] == hub.uids["bob"] and json.loads(line)["op"] ==
               "grade_class" for line in log.read_text().splitlines()), log.read_text()


def test_stopping_the_hub_stops_every_server(hub: Hub) -> None:
    uids = set(hub.uids.values())
    assert processes_of(uids), "no participant's server is running before the stop"
    proxy_pid = int((hub.state / "proxy.pid").read_text())
    assert lab_service_processes(hub), "the hub's lab service is not running"
    stop_hub(hub)
    assert hub.proc.returncode is not None
    poll(lambda: not processes_of(uids), 60, interval=0.5)
    assert not processes_of(uids), processes_of(uids)
    assert not os.path.exists(f"/proc/{proxy_pid}"), "the proxy outlived the hub"
    assert not lab_service_processes(hub), "the lab service outlived the hub"


def lab_service_processes(hub: Hub) -> list[str]:
    from lab.hub.labservice import socket_path

    return [line for line in processes_of({0})
            if " service --socket " in line and str(socket_path(hub.state)) in line]
