"""Notebooks are kept in the repository without outputs: `python -m lab.notebook.strip`
removes outputs and execution counts from notebooks/*.ipynb (or the files given);
`--check` only lists the ones that have any and exits 1 if so."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"


def leftovers(nb: nbformat.NotebookNode) -> list[str]:
    """What an executed run left in a notebook: outputs and execution counts, by cell."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            found.append(f"cell {i}: outputs")
        if cell.get("execution_count") is not None:
            found.append(f"cell {i}: execution count")
        if "execution" in cell.get("metadata", {}):
            found.append(f"cell {i}: execution timings in metadata")
    return found


def strip(nb: nbformat.NotebookNode) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)


def notebook_paths(given: list[str]) -> list[Path]:
    return [Path(p) for p in given] if given else sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report, change nothing")
    parser.add_argument("notebooks", nargs="*", help="default: notebooks/*.ipynb")
    args = parser.parse_args(argv)
    dirty = 0
    for path in notebook_paths(args.notebooks):
        nb = nbformat.read(path, as_version=4)
        found = leftovers(nb)
        if not found:
            continue
        dirty += 1
        if args.check:
            print(f"{path}: {', '.join(found)}")
        else:
            strip(nb)
            nbformat.write(nb, path)
            print(f"stripped {path}")
    if args.check and dirty:
        print("run `python -m lab.notebook.strip` to strip them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
