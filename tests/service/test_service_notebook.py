"""A participant without root runs a guided notebook: `Lab(...)` asks the lab service for
the lab, and every cell (commands in vm1, raw frames from h1, the grade) goes through it
under the participant's uid. Their h1 commands hold CAP_NET_RAW and nothing else, and
cannot leave h1's network namespace."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from participants import ALICE, REPO_ROOT, Service, as_uid

from lab.runstate import list_runs

pytestmark = [pytest.mark.vm, pytest.mark.slow]

NOTEBOOK = REPO_ROOT / "notebooks" / "01-first-stack.ipynb"
EXERCISE_1 = REPO_ROOT / "exercises" / "01-first-stack"
CAP_NET_RAW = 1 << 13  # <linux/capability.h>

# Runs as alice: notebook 01 top to bottom in the lab's Jupyter kernel, on her own work
# folder; prints every cell's output.
RUN_NOTEBOOK = r"""
import json, sys
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, kernel_name="lanalab", timeout=600,
               resources={"metadata": {"path": sys.argv[2]}}).execute()
texts = ["".join(o.get("text", "")) + json.dumps(o.get("data", {}))
         for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
print(json.dumps({"outputs": texts}))
"""


def participant_env(service: Service, home: Path) -> dict[str, str]:
    return {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(home),
            "PYTHONPATH": str(REPO_ROOT), "PYTHONDONTWRITEBYTECODE": "1",
            "LC_ALL": "C.UTF-8", "LANALAB_SERVICE_SOCKET": str(service.socket),
            "LANALAB_WORK_DIR": str(home / "work"), "JUPYTER_PLATFORM_DIRS": "1"}


@pytest.fixture(scope="module")
def alice_home(service: Service) -> Path:
    home = service.folder / "alice"
    home.mkdir(mode=0o700)
    os.chown(home, ALICE, ALICE)
    return home


def run_as_alice(service: Service, home: Path, argv: list[str],
                 timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*as_uid(ALICE), *argv], capture_output=True, text=True,
                          timeout=timeout, env=participant_env(service, home), cwd=home)


def test_notebook_01_runs_top_to_bottom_through_the_service(service: Service,
                                                            alice_home: Path) -> None:
    from lab.notebook.kernelspec import ensure_kernel_spec

    ensure_kernel_spec()
    notebook = alice_home / NOTEBOOK.name
    shutil.copy(NOTEBOOK, notebook)
    work = alice_home / "work" / "01-first-stack"  # what she wrote: the right stack.sh
    shutil.copytree(EXERCISE_1 / "solution", work)
    for path in [notebook, work.parent, work, *work.iterdir()]:
        os.chown(path, ALICE, ALICE)
    proc = run_as_alice(service, alice_home, [sys.executable, "-c", RUN_NOTEBOOK,
                                              str(notebook), str(alice_home)])
    assert proc.returncode == 0, proc.stderr[-4000:]
    outputs = json.loads(proc.stdout.strip().splitlines()[-1])["outputs"]
    said = "\n".join(outputs)
    assert "lab up (lab service, lab" in said, said[-3000:]
    assert "sent 25 frames" in said, said[-3000:]  # raw frames from h1, as alice
    assert "all checks passed" in said, said[-3000:]  # graded on her lab by the service
    assert "lab 'bench' is down" in said
    assert str(work) in said  # the notebook showed and graded her folder
    assert [r.run_id for r in list_runs() if r.alive] == []  # no lab of hers is left


def test_h1_commands_hold_net_raw_only_inside_h1(service: Service, alice_home: Path) -> None:
    code = r"""
import json, os
from lab.service.client import ServiceClient
lab = ServiceClient().up("bench")
try:
    def h1(command):
        r = lab.exec("h1", ["sh", "-c", command])
        return [r["exit_code"], r["stdout"] + r["stderr"]]
    print(json.dumps({
        "status": h1("id -u; grep -E '^(CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status"),
        "ping": h1("ping -c 2 -W 5 10.0.0.1"),
        "to_root_netns": h1("ip link set h1-eth0 netns 1"),
        "new_link": h1("ip link add lanatest0 type dummy"),
        "address": h1("ip addr add 10.0.0.222/24 dev h1-eth0"),
        "nsenter": h1("nsenter --net=/proc/1/ns/net true"),
        # her own process outside, in the host's namespace: she may open it, not enter it
        "nsenter_own": h1(f"nsenter --net=/proc/{os.getpid()}/ns/net ip -o link show"),
        "links": h1("ip -o link show"),
    }))
finally:
    lab.down()
"""
    proc = run_as_alice(service, alice_home, [sys.executable, "-c", code], timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    code_, status = got["status"]
    assert code_ == 0 and status.splitlines()[0] == str(ALICE), status
    fields = dict(line.split(":\t") for line in status.splitlines()[1:])
    for name in ("CapEff", "CapBnd", "CapAmb"):
        assert int(fields[name], 16) == CAP_NET_RAW, (name, status)
    assert fields["NoNewPrivs"].strip() == "1", status
    assert got["ping"][0] == 0, got["ping"]  # ping works: raw ICMP sockets
    for attempt in ("to_root_netns", "new_link", "address", "nsenter", "nsenter_own"):
        exit_code, said = got[attempt]
        assert exit_code != 0, (attempt, said)  # no CAP_NET_ADMIN, no CAP_SYS_ADMIN
        assert "not permitted" in said or "Permission denied" in said, (attempt, said)
    assert "Operation not permitted" in got["nsenter_own"][1], got["nsenter_own"]
    assert "h1-eth0" in got["links"][1] and "lanatest0" not in got["links"][1]
