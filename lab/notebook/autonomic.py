"""Exercise 8 from a notebook: run a controller policy against floods (the grader's
scenario, lab.autonomic.scenario) and show what it did: the stack before, while guarded
and after, the reaction time per flood, the frames lost."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from lab.autonomic import scenario
from lab.autonomic.journal import JournalRecord
from lab.notebook.draw import draw_block_graph
from lab.notebook.graph import block_graph
from lab.notebook.nodes import VmNode
from lab.notebook.show import show

POLICY = f"{scenario.WORK}/policy.py"


@dataclass
class Defence:
    run: scenario.FloodRun | None  # None: the controller never got ready (see `failed`)
    journal: list[JournalRecord]
    before: str  # /proc/net/lana/fblocks before the first flood
    after: str  # and after the last one
    failed: str | None = None

    def table(self) -> pd.DataFrame:
        """One row per flood: reaction and recovery (ms), flood frames before the guard."""
        rows = []
        for i, flood in enumerate(self.run.floods if self.run else [], start=1):
            reaction = flood.get("guard_seen", float("nan")) - flood["start"]
            recovery = flood.get("restored_seen", float("nan")) - flood["end"]
            rows.append({"flood": i, "reaction ms": round(1000 * reaction, 1),
                         "guard out after ms": round(1000 * recovery, 1),
                         "flood frames before the guard": flood["flood_before_guard"]})
        return pd.DataFrame(rows).set_index("flood") if rows else pd.DataFrame()

    def summary(self) -> pd.DataFrame:
        if self.run is None:
            return pd.DataFrame([{"controller": self.failed}])
        run = self.run
        return pd.DataFrame([{"floods": len(run.floods), "reacted to": len(run.reactions),
                              "legitimate sent": run.legit, "legitimate lost": run.legit_lost,
                              "flood frames sent": run.flood,
                              "flood frames at victim": run.flood_at_victim}])

    def draw(self) -> None:
        """The stack before the floods, while the first flood was guarded, and after."""
        draw_block_graph(block_graph(self.before), "vm1 before the floods")
        guarded = next((f["fblocks_guarded"] for f in (self.run.floods if self.run else [])
                        if "fblocks_guarded" in f), None)
        if guarded is None:
            print("no flood changed the stack: your policy did not react")
        else:
            draw_block_graph(block_graph(guarded), "vm1 during the first flood (guarded)")
        draw_block_graph(block_graph(self.after), "vm1 after the floods")


def defend(vm: VmNode, policy: Path | str, floods: int = 5, flood_ethertype: int = 0x88B6,
           policy_class: str = "Guard") -> Defence:
    """Build the exercise's stack in `vm`, run the controller with `policy` (a file on the
    host, copied in), flood `floods` times, stop the controller, take the stack down."""
    guest = vm.grading_node()
    scenario.build_stack(guest)
    guest.put(POLICY, Path(policy).read_bytes())
    controller = scenario.start_controller(guest, f"{POLICY}:{policy_class}")
    try:
        before = guest.read("/proc/net/lana/fblocks")
        if controller.failed is not None:
            return Defence(None, scenario.journal(guest), before, before, controller.failed)
        run = scenario.flood(guest, floods, flood_ethertype)
        after = guest.read("/proc/net/lana/fblocks")
        scenario.stop_controller(guest, controller)
        return Defence(run, scenario.journal(guest), before, after)
    finally:
        scenario.stop_controller(guest, controller)
        scenario.tear_down_stack(guest)


def plot_reactions(defence: Defence, title: str = "time to react, per flood") -> Figure | None:
    """Per flood: from its first frame to the guard in, and from its last frame to the
    guard out again."""
    table = defence.table()
    fig, ax = plt.subplots(figsize=(6, 2.8))
    if not table.empty:
        x = table.index.to_numpy()
        ax.bar(x - 0.2, table["reaction ms"], width=0.4, color="#4c72b0",
               label="guard in (from the flood's first frame)")
        ax.bar(x + 0.2, table["guard out after ms"], width=0.4, color="#dd8452",
               label="guard out (from the flood's last frame)")
        ax.set_xticks(x)
        ax.legend(fontsize=8)
    ax.set_xlabel("flood")
    ax.set_ylabel("ms")
    ax.set_title(title, fontsize=11)
    return show(fig)
