"""One lab service for the module, on a private socket and run folder."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from participants import CONFIG, TEACHER, Service


@pytest.fixture(scope="module")
def service(image) -> Iterator[Service]:
    from lab.runstate import clean
    from lab.service.ops_labs import take_down
    from lab.service.ownership import all_labs

    folder = Path(tempfile.mkdtemp(prefix="lanalab-svctest-"))
    folder.chmod(0o711)  # participants reach the socket and their files, list nothing
    run_dir = folder / "run"
    config = folder / "service.toml"
    log = folder / "log" / "refusals.jsonl"
    config.write_text(CONFIG.format(log=log, teacher=TEACHER))
    env = {**os.environ, "LANALAB_RUN_DIR": str(run_dir)}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANALAB_RUN_DIR", str(run_dir))  # the hygiene checks look there too
        svc = Service(folder, folder / "sock" / "service.sock", log, config, env)
        svc.start()
        try:
            yield svc
        finally:
            svc.stop()
            for lab in all_labs():  # whatever a failed or deselected test left running
                take_down(lab)
            report = clean(include_live=True)
            assert report.ok, report.errors
            subprocess.run(["rm", "-rf", "--one-file-system", str(folder)], check=False)
