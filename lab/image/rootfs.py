"""The guest root file system: mmdebstrap --variant=minbase bookworm with the recipe's
packages, cached as a tarball keyed by what goes into it.

Division of labour: this module reuses the host's own way of reaching Debian (its apt
sources and its proxy/validity options: the mirror here may be a proxy or a snapshot), runs
mmdebstrap once per package list, and unpacks the cached tarball for each image build, so
a change to LANA or the kernel never re-runs mmdebstrap.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lab.errors import ImageError
from lab.image.shell import run

SUITE = "bookworm"
# docs, man pages and translations are dead weight in a lab VM (copyright files stay);
# no fsync per file: the tarball is renamed into place only once mmdebstrap succeeded
_DPKG_OPTS = ("force-unsafe-io",
              "path-exclude=/usr/share/man/*", "path-exclude=/usr/share/info/*",
              "path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
              "path-exclude=/usr/share/locale/*", "path-exclude=/usr/share/lintian/*")
_APT_KEYS = re.compile(r"^(Acquire::(https?|ftp)::Proxy|Acquire::Check-Valid-Until|"
                       r"Acquire::Check-Date)\b")
_MIRROR_HINT = ("check that this host reaches its Debian mirror (`apt-get update`), "
                "then run `lanalab image build` again")


def _deb822_stanzas(text: str) -> list[str]:
    stanzas = re.split(r"\n\s*\n", text)
    kept = []
    for stanza in stanzas:
        lines = [line for line in stanza.splitlines() if not line.lstrip().startswith("#")]
        fields = {line.split(":", 1)[0].strip().lower(): line.split(":", 1)[1].strip()
                  for line in lines if ":" in line and not line.startswith((" ", "\t"))}
        suites = fields.get("suites", "").split()
        if (fields.get("enabled", "yes").lower() != "no" and "deb" in fields.get("types", "")
                and any(s.startswith(SUITE) for s in suites)):
            kept.append("\n".join(lines))
    return kept


def _one_line_entries(text: str) -> list[str]:
    kept = []
    for line in text.splitlines():
        words = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb" and words[2].startswith(SUITE):
            kept.append(line.strip())
    return kept


def host_apt_sources(apt_etc: Path = Path("/etc/apt")) -> tuple[str, str]:
    """The host's bookworm sources as (deb822 stanzas, one-line entries), in file order."""
    stanzas: list[str] = []
    lines: list[str] = []
    candidates = [apt_etc / "sources.list", *sorted((apt_etc / "sources.list.d").glob("*"))]
    for path in candidates:
        if path.name.endswith(".sources") and path.is_file():
            stanzas.extend(_deb822_stanzas(path.read_text()))
        elif path.name.endswith(".list") and path.is_file():
            lines.extend(_one_line_entries(path.read_text()))
    if not stanzas and not lines:
        raise ImageError(f"no Debian {SUITE} source in {apt_etc}/sources.list*",
                         "this host must reach a Debian bookworm mirror through apt")
    return "\n\n".join(stanzas), "\n".join(lines)


def host_apt_options() -> list[str]:
    """The host's apt options that decide how the mirror is reached (proxy, validity)."""
    dump = run(["apt-config", "dump"], timeout=30)
    return [line.strip() for line in dump.splitlines() if _APT_KEYS.match(line.strip())]


def rootfs_key(packages: list[str], sources: tuple[str, str], options: list[str]) -> str:
    text = "\0".join([SUITE, *packages, *sources, *options, *_DPKG_OPTS])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def mmdebstrap_argv(packages: list[str], options: list[str], mirrors: list[Path],
                    out: Path) -> list[str]:
    argv = ["mmdebstrap", "--variant=minbase", "--mode=root", "--format=tar",
            f"--include={','.join(packages)}"]
    argv += [f"--aptopt={option}" for option in options]
    argv += [f"--dpkgopt={option}" for option in _DPKG_OPTS]
    return argv + [SUITE, str(out), *map(str, mirrors)]


@dataclass(frozen=True)
class RootfsPlan:
    """Where the rootfs tarball for a package list lives, and how to make it."""

    tarball: Path
    packages: list[str]
    sources: tuple[str, str]
    options: list[str]

    @property
    def cached(self) -> bool:
        return self.tarball.is_file()


def plan_rootfs(cache: Path, packages: list[str]) -> RootfsPlan:
    sources = host_apt_sources()
    options = host_apt_options()
    tarball = cache / "rootfs" / f"{rootfs_key(packages, sources, options)}.tar"
    return RootfsPlan(tarball, packages, sources, options)


class RootfsJob:
    """mmdebstrap running in the background (about a minute, mostly waiting on the mirror
    and dpkg) while the build fetches the kernel and compiles LANA.

    It writes into a temporary folder next to the tarball; `wait` renames the result into
    place, `cancel` stops mmdebstrap and removes the folder."""

    def __init__(self, plan: RootfsPlan) -> None:
        self.plan = plan
        plan.tarball.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=".mmdebstrap-", dir=plan.tarball.parent))
        mirrors = []
        for suffix, text in ((".sources", plan.sources[0]), (".list", plan.sources[1])):
            if text:
                mirrors.append(self.tmp / f"host{suffix}")
                mirrors[-1].write_text(text + "\n")
        self.partial = self.tmp / "rootfs.tar"
        self.log = self.tmp / "mmdebstrap.log"
        self.argv = mmdebstrap_argv(plan.packages, plan.options, mirrors, self.partial)
        try:
            with self.log.open("wb") as log:
                self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise ImageError("`mmdebstrap` is not installed on this host",
                             "run scripts/setup-host.sh to install the lab's host packages"
                             ) from None

    def wait(self, timeout: float = 1800) -> None:
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.cancel()
            raise ImageError(f"mmdebstrap did not finish within {timeout:.0f} s",
                             _MIRROR_HINT) from None
        try:
            if status != 0:
                tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])
                raise ImageError("mmdebstrap could not create the guest root file system "
                                 f"(exit status {status})\n--- output tail ---\n{tail}",
                                 _MIRROR_HINT)
            os.replace(self.partial, self.plan.tarball)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def cancel(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def unpack_rootfs(tarball: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    run(["tar", "-xf", tarball, "-C", dest, "--numeric-owner", "--xattrs"], timeout=300,
        failure=f"cannot unpack the cached root file system {tarball}",
        hint=f"delete {tarball} and build again")


def install_overlay(overlay: Path, rootfs: Path) -> None:
    """Copy images/rootfs/ over the root file system, keeping file modes."""
    shutil.copytree(overlay, rootfs, symlinks=True, dirs_exist_ok=True)


def installed_packages(rootfs: Path) -> dict[str, str]:
    """{package: version} as dpkg inside the root file system records them."""
    out = run(["dpkg-query", f"--admindir={rootfs / 'var/lib/dpkg'}", "-W",
               "-f=${Package}\t${Version}\n"], timeout=60)
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
