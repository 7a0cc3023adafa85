"""At start, the service takes stock of every lab it had made (run records marked
"service"): a lab whose owner process still runs is adopted with its owner uid; any
other (its process died with the service, or on its own) is cleaned, so nothing leaks."""

from __future__ import annotations

from dataclasses import dataclass, field

from lab.runstate import clean
from lab.service.ownership import all_labs


@dataclass
class Recovery:
    adopted: list[tuple[str, int]] = field(default_factory=list)  # (run id, owner uid)
    cleaned: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def recover() -> Recovery:
    result = Recovery()
    for lab in all_labs():
        if not lab.from_service:
            continue  # root's own labs are root's business
        if lab.alive:
            result.adopted.append((lab.run_id, lab.owner_uid))
            continue
        report = clean(lab.run_id)
        if report.errors:
            result.errors += [f"{lab.run_id}: {e}" for e in report.errors]
        else:
            result.cleaned.append(lab.run_id)
    return result
