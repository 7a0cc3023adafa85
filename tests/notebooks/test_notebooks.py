"""Every notebook in notebooks/ runs top to bottom against real VMs, in the project's own
Jupyter kernel (`lanalab`, the .venv's Python), and fails on any cell error.

Exercise notebooks run with `use_reference_solution = True` (appended to their cell tagged
`parameters`) and must end with a grade report in which every check passed. The executed
notebooks are saved under build/notebooks/ and every figure they rendered as a PNG under
build/notebook-figures/<notebook>/ (also when a cell fails), for a reviewer to look at.
After each notebook no lab its kernel brought up may be left running; a notebook that
never calls lab.down() is torn down when its kernel shuts down, and an interrupt during
the bring-up leaves nothing behind.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell, new_notebook

from lab.labstate import list_labs
from lab.notebook.kernelspec import KERNEL_NAME, ensure_kernel_spec
from lab.notebook.strip import NOTEBOOKS_DIR
from lab.runstate import list_runs, run_base_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD = REPO_ROOT / "build"
FIGURES = BUILD / "notebook-figures"
EXECUTED = BUILD / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 600  # a first image build happens inside the first notebook's bring-up

pytestmark = [pytest.mark.vm, pytest.mark.slow]


def use_reference_solutions(nb: nbformat.NotebookNode) -> bool:
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source += "\nuse_reference_solution = True  # injected by the test suite\n"
            return True
    return False


def save_figures(nb: nbformat.NotebookNode, folder: Path) -> list[Path]:
    """Write every image/png output of the executed notebook to folder/cellNN-K.png."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    saved = []
    for index, cell in enumerate(nb.cells):
        for k, output in enumerate(o for o in cell.get("outputs", [])
                                   if "image/png" in o.get("data", {})):
            path = folder / f"cell{index:02d}-{k}.png"
            path.write_bytes(base64.b64decode(output["data"]["image/png"]))
            saved.append(path)
    return saved


def run_notebook(nb: nbformat.NotebookNode, kernel_name: str) -> int:
    """Execute nb in place (the kernel is shut down gracefully at the end); -> the
    kernel's pid, which every lab it brought up records as its owner."""
    pids: list[int] = []
    client = NotebookClient(nb, kernel_name=kernel_name, timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
    client.on_notebook_start = lambda **_: pids.append(client.km.provisioner.pid)
    try:
        client.execute()
    finally:
        assert pids, "the kernel did not start"
    return pids[0]


def labs_of(pid: int) -> list[str]:
    return [lab.id for lab in list_labs() if lab.state.get("owner_pid") == pid]


def outputs_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        data = output.get("data", {})
        parts.append(data.get("text/html", "") + data.get("text/plain", ""))
    return "\n".join(parts)


@pytest.fixture(scope="session")
def kernel_name(image) -> str:  # image: the guest image is built before any notebook runs
    ensure_kernel_spec()
    return KERNEL_NAME


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, kernel_name: str) -> None:
    nb = nbformat.read(path, as_version=4)
    is_exercise = use_reference_solutions(nb)
    start = time.monotonic()
    kernel_pid = -1
    try:
        kernel_pid = run_notebook(nb, kernel_name)
    except CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell failed:\n{exc}", pytrace=False)
    finally:
        EXECUTED.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, EXECUTED / path.name)
        figures = save_figures(nb, FIGURES / path.stem)
        print(f"{path.name}: {time.monotonic() - start:.1f} s, {len(figures)} figure(s) in "
              f"{FIGURES / path.stem}")
    left = labs_of(kernel_pid)
    assert not left, f"{path.name} left lab(s) {left} running: `lanalab clean` removes them"
    assert figures, f"{path.name} rendered no figure"
    if is_exercise:
        graded = [c for c in nb.cells if c.cell_type == "code" and "lab.grade(" in c.source]
        assert graded, f"{path.name} has no grading cell"
        report = outputs_text(graded[-1])
        assert "all checks passed" in report, \
            f"{path.name}: the reference solution did not get full marks:\n{report[-2000:]}"


def test_kernel_shutdown_tears_the_lab_down(kernel_name: str) -> None:
    """A notebook that brings up a lab and never calls lab.down(): the kernel's shutdown
    (as on a restart, or when JupyterLab closes it) takes the lab down."""
    nb = new_notebook(cells=[new_code_cell(
        "from lab.notebook import Lab\n"
        "lab = Lab('bench').up()\n"
        "print(lab.run_id, lab['vm1'].sh('echo alive'))")])
    pid = run_notebook(nb, kernel_name)
    printed = nb.cells[0].outputs[-1].get("text", "")
    assert "alive" in printed, nb.cells[0].outputs
    run_id = printed.split()[0]
    assert run_id not in [lab.id for lab in list_labs()], \
        f"lab {run_id} of kernel {pid} is still running after the kernel shut down"
    assert not (run_base_dir() / run_id).exists()


def _resources(run_id: str) -> str:
    path = run_base_dir() / run_id / "resources.jsonl"
    return path.read_text() if path.exists() else ""


def test_interrupt_during_bring_up_tears_down(kernel_name: str) -> None:
    """Interrupting the kernel (the stop button) while a lab comes up: the step in progress
    ends, what was made is torn down, and the cell ends with KeyboardInterrupt."""
    km = KernelManager(kernel_name=kernel_name)
    km.start_kernel(cwd=str(NOTEBOOKS_DIR))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        pid = km.provisioner.pid
        msg_id = kc.execute("from lab.notebook import Lab\nlab = Lab('bench').up()")
        deadline = time.monotonic() + 300  # a first image build may come first
        # interrupt in the middle of the bring-up: once the VM's qemu is recorded
        while not any('"qemu' in _resources(r.run_id) for r in list_runs()
                      if r.owner_pid == pid):
            assert time.monotonic() < deadline, "the bring-up did not reach the VM boot"
            time.sleep(0.05)
        km.interrupt_kernel()
        while True:
            reply = kc.get_shell_msg(timeout=180)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        assert reply["content"]["status"] == "error", reply["content"]
        assert reply["content"]["ename"] == "KeyboardInterrupt", reply["content"]
        left = [r.run_id for r in list_runs() if r.owner_pid == pid]
        assert not left, f"run(s) {left} left behind after the interrupt"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
