"""Build a student's LANA block module on the host, for the guest's kernel.

The block is compiled against the guest kernel's headers (/usr/src/linux-headers-<release>),
the LANA headers in kernel/include, and the Module.symvers of lana.ko, so modpost knows
the core's exported symbols. lana.ko comes from a scratch copy of the *committed* kernel/
(git HEAD: the work tree may be mid-edit by kernel developers), never a build in the work
tree, cached per git tree id and kernel release.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lab.errors import GradingError
from lab.grading import buildas
from lab.grading.textfile import not_text

REPO_ROOT = Path(__file__).resolve().parents[2]
KERNEL_DIR = REPO_ROOT / "kernel"


@dataclass(frozen=True)
class BuildResult:
    ok: bool
    module: Path | None
    log: str


def headers_dir(release: str) -> Path:
    path = Path(f"/usr/src/linux-headers-{release}")
    if not path.is_dir():
        raise GradingError(f"the guest kernel's headers are not installed ({path})",
                           f"apt-get install linux-headers-{release}")
    return path


def guest_kernel_release(run_id: str | None) -> str:
    """The kernel release of the image the lab runs (or would run)."""
    from lab.image.store import ImageInfo, resolve_image

    if run_id:
        from lab.labstate import find_lab

        image = ImageInfo.load(Path(find_lab(run_id).state["image"]))
    else:
        image = resolve_image()
    return str(image.manifest["kernel_release"])


def _kernel_tree() -> str:
    """The git tree id of the committed kernel/ folder."""
    proc = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD:kernel"],
                          capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise GradingError(f"cannot find the committed kernel/ sources: {proc.stderr.strip()}",
                           "grade from a git checkout of the lab")
    return proc.stdout.strip()


def _api_key(tree: str) -> str:
    """What the symbol versions of lana.ko depend on: its headers and the exported
    functions. Edits elsewhere in the core (made all the time) need no new build."""
    def git(*argv: str) -> str:
        return subprocess.run(["git", "-C", str(REPO_ROOT), *argv], capture_output=True,
                              text=True, timeout=30, check=False).stdout
    include = git("rev-parse", f"{tree}:include").strip()
    exports = git("grep", "-h", "EXPORT_SYMBOL", tree, "--", "core")
    return hashlib.sha256(f"{include}\n{exports}".encode()).hexdigest()[:16]


def _export_kernel_tree(tree: str, scratch: Path) -> None:
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", "--format=tar", tree],
                             capture_output=True, timeout=60, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(scratch)], input=archive, timeout=60, check=True)


def lana_symvers(release: str) -> Path:
    """Module.symvers of lana.ko built from kernel/ (scratch copy, cached)."""
    from lab.image.store import cache_root

    tree = _kernel_tree()
    target = cache_root() / "grading" / f"lana-{release}-{_api_key(tree)}"
    symvers = target / "Module.symvers"
    if symvers.is_file():
        return symvers
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="lana-build-", dir=target.parent))
    _export_kernel_tree(tree, scratch)
    proc = subprocess.run(["make", "-C", str(scratch), "modules", "-j2",
                           f"KDIR={headers_dir(release)}"], capture_output=True, text=True,
                          timeout=900, check=False)
    if proc.returncode != 0 or not (scratch / "Module.symvers").is_file():
        shutil.rmtree(scratch, ignore_errors=True)
        raise GradingError("building lana.ko from kernel/ failed, so a student block cannot "
                           f"be linked against it:\n{(proc.stdout + proc.stderr)[-2000:]}")
    try:
        scratch.rename(target)
    except OSError:  # another grader finished first: use its build
        shutil.rmtree(scratch, ignore_errors=True)
    return symvers


def build_block(source: Path, release: str, out_dir: Path) -> BuildResult:
    """Build source (fb_<type>.c) into out_dir/build/fb_<type>.ko, stripped of debug info
    (small enough to copy through the guest agent); compiled as LANALAB_BUILD_AS when the
    lab service grades (lab/grading/buildas.py)."""
    if not source.is_file():
        return BuildResult(False, None, f"{source.name} is missing from your submission")
    if problem := not_text(source):
        return BuildResult(False, None, problem)
    symvers = lana_symvers(release)
    user = buildas.build_user()
    module = out_dir / "build" / f"{source.stem}.ko"
    shutil.rmtree(module.parent, ignore_errors=True)
    with buildas.build_folder(user) as build:
        # copies of everything the build reads from the lab, so the build user needs no
        # way into the checkout (which may sit in root's home)
        shutil.copyfile(source, build / source.name)
        shutil.copyfile(symvers, build / "lana.symvers")
        shutil.copytree(KERNEL_DIR / "include", build / "include")
        (build / "Kbuild").write_text(f"obj-m := {source.stem}.o\n"
                                      f"ccflags-y := -I{build / 'include'}\n")
        buildas.hand_over(list(build.rglob("*")), user)
        proc = subprocess.run([*buildas.prefix(user), "make", "-C", str(headers_dir(release)),
                               f"M={build}", f"KBUILD_EXTRA_SYMBOLS={build / 'lana.symvers'}",
                               "modules"],
                              capture_output=True, text=True, errors="replace", timeout=300,
                              check=False, env={**os.environ, "LC_ALL": "C"})
        log = proc.stdout + proc.stderr
        built = build / f"{source.stem}.ko"
        if proc.returncode != 0:
            return BuildResult(False, None, log)
        subprocess.run([*buildas.prefix(user), "strip", "--strip-debug", str(built)],
                       check=False, timeout=60, capture_output=True)
        if not buildas.take_back(built, module):
            return BuildResult(False, None, log + f"\nthe build made no {built.name}")
    return BuildResult(True, module, log)


def compiler_messages(log: str, limit: int = 25) -> str:
    """The lines of a build log a student needs: errors and warnings, with file:line."""
    keep = [line for line in log.splitlines()
            if "error" in line.lower() or "warning" in line.lower() or ": note:" in line]
    return "\n".join(keep[:limit]) or log[-1500:]
