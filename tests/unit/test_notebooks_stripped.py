"""Notebooks are committed without outputs or execution counts (a run's results belong in
build/, not in the repository): strip them with `python -m lab.notebook.strip`."""

from __future__ import annotations

import nbformat
import pytest

from lab.notebook.kernelspec import KERNEL_NAME
from lab.notebook.strip import NOTEBOOKS_DIR, leftovers

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    assert any(p.name.startswith("00-") for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stripped(path) -> None:
    nb = nbformat.read(path, as_version=4)
    found = leftovers(nb)
    assert not found, (f"{path.name} has {', '.join(found)}: run "
                       "`.venv/bin/python -m lab.notebook.strip`")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_valid_and_uses_the_lab_kernel(path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == KERNEL_NAME
