"""Show a matplotlib figure inline when running inside IPython/Jupyter."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def show(fig: Figure) -> Figure | None:
    """In a notebook: display the figure now, close it (so the inline backend does not
    show it a second time) and return None. Elsewhere: return it for savefig()."""
    if not in_notebook():
        return fig
    from IPython.display import display

    display(fig)
    plt.close(fig)
    return None
