"""The lab's files in a hypervisor host's storage pool: the guest image, pushed before a VM
boots there and verified by digest, and the per-VM volumes made next to it (the qcow2
overlay, the console log).

Pool. A dir pool `lanalab` (target /var/lib/libvirt/lanalab), defined, built, started and
set to autostart when missing. Everything goes through the host's libvirt URI only: no ssh,
no shared file system.

Image volumes. Each image file is one volume named after its content, `<sha256[:12]>-<file>`
(`3f2a...-rootfs.qcow2`), so images coexist and a name proves what it holds. A volume counts
only with its stamp beside it, `<volume>.sha256`, a small volume holding the full sha256 and
size, written after the upload was hashed on the way out and matched the expected digest: a
volume whose upload died half way (libvirt makes it at full size before the first byte)
has no stamp and is replaced. A found volume is checked by its stamp and its size on the host
(`verify="size"`, the default, a few small calls) or also downloaded and hashed
(`verify="full"`, as long as an upload). The digests come from the image's manifest
(lab.image.manifest writes sha256 and size of each file) when the file still has the size
it lists, else from hashing the file once per process (cached by inode, size and mtime).

Run volumes (overlay, console log) carry the run prefix and are recorded in the run record
as `libvirt-volume` (uri, pool, name) before they are made; lab.runstate.clean removes them
on their host. Image volumes are a cache shared by runs and never recorded: a run's cleanup
leaves them; `virsh -c URI vol-delete NAME --pool lanalab` removes one by hand.

Not handled: two processes pushing the same image to the same host at the same moment (the
second finds the first's volume unstamped and replaces it, failing the first).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lab.errors import ImageError, LabError
from lab.runstate import RunRecord
from lab.vm.libvirt_conn import check_route, open_connection

POOL_NAME = "lanalab"
POOL_TARGET = "/var/lib/libvirt/lanalab"
DIGEST_PREFIX = 12  # hex digits of the sha256 in a volume name (48 bits)
STAMP_SUFFIX = ".sha256"
CHUNK = 1 << 20
CONNECT_TIMEOUT_S = 10.0  # an unreachable host fails within this (TCP probe of tcp:// URIs)
PROGRESS_MIN_BYTES = 32 << 20  # files from this size get percent lines while they go up
PROGRESS_STEP = 10  # percent between two progress lines
LIBVIRT_TCP_PORT = 16509
# the image's files: role -> file name in the image folder and in volume names
FILES = {"kernel": "vmlinuz", "initrd": "initrd.img", "rootfs": "rootfs.qcow2"}
VERIFY_MODES = ("size", "full")

Progress = Callable[[str], None]


class HostImageError(LabError):
    """A host's libvirt, pool or volumes could not be used for the lab's image."""


def _libvirt() -> Any:
    try:
        import libvirt
    except ImportError:
        raise HostImageError("pushing images to a hypervisor needs libvirt-python",
                             "pip install 'lanalab[libvirt]' into the lab's venv") from None
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


# ---- names, digests and XML (pure) ---------------------------------------------------------


def host_of(uri: str) -> str:
    """The host a URI names, for messages (`qemu+tcp://198.51.100.6/system` -> 198.51.100.6)."""
    return urlsplit(uri).hostname or uri


def volume_name(sha256: str, role: str) -> str:
    """`<sha256[:12]>-<file>`, e.g. volume_name("3f2a...", "rootfs") == "3f2a...-rootfs.qcow2"."""
    if len(sha256) < DIGEST_PREFIX or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return f"{sha256[:DIGEST_PREFIX]}-{FILES[role]}"


def stamp_name(volume: str) -> str:
    return volume + STAMP_SUFFIX


def stamp_text(sha256: str, size: int) -> str:
    return f"sha256 {sha256} size {size}\n"


def parse_stamp(text: str) -> tuple[str, int] | None:
    """(sha256, size) from a stamp's content; None when it is not one."""
    words = text.split()
    if len(words) != 4 or words[0] != "sha256" or words[2] != "size" or not words[3].isdigit():
        return None
    return words[1], int(words[3])


def run_volume_name(prefix: str, vm: str, what: str) -> str:
    """A run's own volume: `<run prefix>-<vm>-overlay.qcow2`, `<run prefix>-<vm>-console.log`."""
    return f"{prefix}-{vm}-{what}"


def pool_xml(name: str = POOL_NAME, target: str = POOL_TARGET) -> str:
    pool = ET.Element("pool", type="dir")
    ET.SubElement(pool, "name").text = name
    tgt = ET.SubElement(pool, "target")
    ET.SubElement(tgt, "path").text = target
    perms = ET.SubElement(tgt, "permissions")
    ET.SubElement(perms, "mode").text = "0711"  # qemu runs as root in the lab's daemons
    return ET.tostring(pool, encoding="unicode")


def volume_xml(name: str, size: int) -> str:
    """A plain file volume of `size` bytes (made sparse; an upload fills it). Its content may
    be qcow2 (the rootfs): libvirt probes that itself after the upload."""
    vol = ET.Element("volume", type="file")
    ET.SubElement(vol, "name").text = name
    ET.SubElement(vol, "capacity", unit="bytes").text = str(size)
    ET.SubElement(vol, "allocation", unit="bytes").text = "0"
    tgt = ET.SubElement(vol, "target")
    ET.SubElement(tgt, "format", type="raw")
    return ET.tostring(vol, encoding="unicode")


def overlay_xml(name: str, backing_path: str) -> str:
    """A qcow2 overlay over the rootfs volume; no capacity: it takes the backing's."""
    vol = ET.Element("volume", type="file")
    ET.SubElement(vol, "name").text = name
    tgt = ET.SubElement(vol, "target")
    ET.SubElement(tgt, "format", type="qcow2")
    backing = ET.SubElement(vol, "backingStore")
    ET.SubElement(backing, "path").text = backing_path
    ET.SubElement(backing, "format", type="qcow2")
    return ET.tostring(vol, encoding="unicode")


@dataclass(frozen=True)
class ImageFile:
    """One file of the image with its expected content."""

    role: str  # kernel, initrd, rootfs
    path: Path
    sha256: str
    size: int

    @property
    def volume(self) -> str:
        return volume_name(self.sha256, self.role)


_DIGESTS: dict[tuple[str, int, int, int], str] = {}
hash_count = 0  # files hashed by file_sha256 in this process (the cache's unit test reads it)


def file_sha256(path: Path) -> str:
    """sha256 of a file, computed once per process for the same inode, size and mtime."""
    global hash_count
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        _DIGESTS[key] = digest.hexdigest()
        hash_count += 1
    return _DIGESTS[key]


def image_files(image: Any) -> list[ImageFile]:
    """The image's kernel, initrd and rootfs with their digests: the manifest's when it lists
    the file at its current size, else hashed here (once)."""
    listed = (getattr(image, "manifest", None) or {}).get("files", {})
    found = []
    for role, name in FILES.items():
        path = Path(getattr(image, role))
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise ImageError(f"image file `{path}` cannot be read ({exc.strerror})",
                             "rebuild the image with `lanalab image build`") from None
        entry = listed.get(name) or {}
        sha = entry.get("sha256") if entry.get("size") == size else None
        found.append(ImageFile(role, path, str(sha or file_sha256(path)), size))
    return found


# ---- the host's libvirt and pool -----------------------------------------------------------


def open_host(uri: str, timeout: float = CONNECT_TIMEOUT_S) -> Any:
    """A libvirt connection to the host, or HostImageError naming it within `timeout` s
    (tcp URIs are probed first: libvirt's own connect waits for the kernel's TCP timeout)."""
    libvirt = _libvirt()
    parts = urlsplit(uri)
    check_route(uri)  # the probe below must not leave through the uplink either
    if parts.scheme.endswith("+tcp") and parts.hostname:
        try:
            with socket.create_connection((parts.hostname, parts.port or LIBVIRT_TCP_PORT),
                                          timeout=timeout):
                pass
        except OSError as exc:
            raise HostImageError(
                f"libvirt on {parts.hostname} is not reachable at {uri} ({exc})",
                "is libvirtd running there with listen_tcp? (`virsh -c URI uri` from here "
                "tells); once it is back, run the lab again") from None
    try:
        return open_connection(uri)
    except libvirt.libvirtError as exc:
        raise HostImageError(f"cannot connect to libvirt on {host_of(uri)} at {uri} "
                             f"({exc.get_error_message()})",
                             "check the URI and that libvirtd runs there; for qemu+ssh:// "
                             "the remote user needs access to libvirtd") from None


def ensure_pool(conn: Any, name: str = POOL_NAME, target: str = POOL_TARGET) -> Any:
    """The host's pool `name`, running; defined, built and started first when missing."""
    libvirt = _libvirt()
    uri = _uri(conn)
    fix = (f"make it by hand: virsh -c {uri} pool-define-as {name} dir --target {target} && "
           f"virsh -c {uri} pool-build {name} && virsh -c {uri} pool-start {name}")
    try:
        try:
            pool = conn.storagePoolLookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
                raise
            try:
                pool = conn.storagePoolDefineXML(pool_xml(name, target), 0)
            except libvirt.libvirtError:
                pool = conn.storagePoolLookupByName(name)  # defined meanwhile by another lab
        if not pool.isActive():
            pool.build(0)  # mkdir of the target; harmless when it exists
            try:
                pool.create(0)
            except libvirt.libvirtError:
                if not pool.isActive():  # started meanwhile by another lab: fine
                    raise
        if not pool.autostart():
            pool.setAutostart(1)
    except libvirt.libvirtError as exc:
        raise HostImageError(f"the storage pool `{name}` on {host_of(uri)} cannot be used "
                             f"({exc.get_error_message()})", fix) from None
    return pool


def _uri(conn: Any) -> str:
    try:
        return str(conn.getURI())
    except Exception:  # noqa: BLE001 - only for messages
        return "?"


# ---- push ----------------------------------------------------------------------------------


@dataclass
class RemoteImage:
    """The image as it is on one host: its volumes and their paths there."""

    uri: str
    pool: str
    kernel: str  # host paths (vol.path())
    initrd: str
    rootfs: str
    volumes: dict[str, str]  # role -> volume name
    uploaded: list[str] = field(default_factory=list)  # volumes sent by this push
    replaced: list[str] = field(default_factory=list)  # "<volume>: <why>" found bad, re-sent
    bytes_uploaded: int = 0
    seconds: float = 0.0


def push_image(conn_or_uri: Any, image: Any, progress: Progress = print,
               verify: str = "size", pool_name: str = POOL_NAME) -> RemoteImage:
    """Make sure the host holds `image`'s kernel, initrd and rootfs with the right digests,
    uploading only what is missing or bad there. `conn_or_uri`: a libvirt connection or URI;
    `verify`: "size" (stamp and size) or "full" (also download and hash what is found)."""
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}, not {verify!r}")
    start = time.monotonic()
    owned = isinstance(conn_or_uri, str)
    conn = open_host(conn_or_uri) if owned else conn_or_uri
    try:
        uri = _uri(conn)
        files = image_files(image)
        pool = ensure_pool(conn, pool_name)
        _refresh(pool)
        result = RemoteImage(uri, pool_name, "", "", "", {f.role: f.volume for f in files})
        for f in files:
            vol = _ensure_volume(conn, pool, f, verify, progress, result)
            setattr(result, f.role, str(vol.path()))
        result.seconds = time.monotonic() - start
        return result
    finally:
        if owned:
            conn.close()


def _ensure_volume(conn: Any, pool: Any, f: ImageFile, verify: str, progress: Progress,
                   result: RemoteImage) -> Any:
    libvirt = _libvirt()
    host = host_of(result.uri)
    try:
        problem = _check_volume(conn, pool, f, verify)
        if problem is None:
            return pool.storageVolLookupByName(f.volume)
        if problem != "missing":
            progress(f"{f.volume} on {host}: {problem}; uploading it again")
            result.replaced.append(f"{f.volume}: {problem}")
        _delete_if_there(pool, stamp_name(f.volume))  # the stamp first: never a stamp over
        _delete_if_there(pool, f.volume)              # a partial volume
        vol = _upload_file(conn, pool, f, host, progress)
        result.uploaded.append(f.volume)
        result.bytes_uploaded += f.size
        return vol
    except libvirt.libvirtError as exc:
        raise HostImageError(f"uploading {f.path.name} to {host} ({result.uri}) failed: "
                             f"{exc.get_error_message()}",
                             "is libvirtd still running there, with free space in the pool? "
                             "Run again: a half-sent volume has no stamp and is replaced") from None


def _check_volume(conn: Any, pool: Any, f: ImageFile, verify: str) -> str | None:
    """None when the host holds `f` intact, else what is wrong ("missing" when absent)."""
    vol = _lookup(pool, f.volume)
    if vol is None:
        return "missing"
    stamp_vol = _lookup(pool, stamp_name(f.volume))
    if stamp_vol is None:
        return "no stamp (an upload that did not finish)"
    stamp = parse_stamp(download(conn, stamp_vol, limit=4096).decode(errors="replace"))
    if stamp != (f.sha256, f.size):
        return f"its stamp says {stamp}, expected ({f.sha256}, {f.size})"
    libvirt = _libvirt()
    try:
        physical = vol.infoFlags(libvirt.VIR_STORAGE_VOL_GET_PHYSICAL)[2]
    except libvirt.libvirtError as exc:
        return f"unreadable ({exc.get_error_message()})"
    if physical != f.size:
        return f"size {physical} bytes, expected {f.size}"
    if verify == "full":
        digest = hashlib.sha256()
        download(conn, vol, sink=digest.update)
        if digest.hexdigest() != f.sha256:
            return f"sha256 {digest.hexdigest()[:DIGEST_PREFIX]}..., expected {f.volume}"
    return None


def _upload_file(conn: Any, pool: Any, f: ImageFile, host: str, progress: Progress) -> Any:
    """Send `f` into a new volume, hashing on the way; stamp it once it proved right."""
    vol = pool.createXML(volume_xml(f.volume, f.size), 0)
    loud = f.size >= PROGRESS_MIN_BYTES
    if loud:
        progress(f"uploading {f.path.name} ({f.size / 1e6:.1f} MB) to {host} as {f.volume}")
    digest = hashlib.sha256()
    sent, start, next_pct = 0, time.monotonic(), PROGRESS_STEP
    stream = conn.newStream(0)
    try:
        vol.upload(stream, 0, f.size, 0)
        with open(f.path, "rb") as src:
            while sent < f.size and (chunk := src.read(min(CHUNK, f.size - sent))):
                digest.update(chunk)
                _send(stream, chunk)
                sent += len(chunk)
                if loud and sent * 100 >= next_pct * f.size:
                    rate = sent / max(time.monotonic() - start, 1e-6) / 1e6
                    progress(f"  {f.path.name}: {sent / 1e6:.1f}/{f.size / 1e6:.1f} MB "
                             f"({sent * 100 // f.size}%, {rate:.0f} MB/s)")
                    next_pct = sent * 100 // f.size // PROGRESS_STEP * PROGRESS_STEP \
                        + PROGRESS_STEP
        stream.finish()
    except BaseException:
        _abort(stream)
        raise
    if sent != f.size or digest.hexdigest() != f.sha256:
        vol.delete(0)
        raise ImageError(f"the local {f.path} changed or is corrupt: sent {sent} bytes with "
                         f"sha256 {digest.hexdigest()[:DIGEST_PREFIX]}..., the image says "
                         f"{f.size} bytes, {f.sha256[:DIGEST_PREFIX]}...",
                         "check it with `lanalab doctor`; rebuild with `lanalab image build`")
    text = stamp_text(f.sha256, f.size).encode()
    stamp = pool.createXML(volume_xml(stamp_name(f.volume), len(text)), 0)
    upload_bytes(conn, stamp, text)
    if loud:
        took = time.monotonic() - start
        progress(f"  {f.path.name} on {host} in {took:.1f} s "
                 f"({f.size / max(took, 1e-6) / 1e6:.0f} MB/s), sha256 verified")
    return vol


def _send(stream: Any, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = stream.send(view.tobytes())
        if n <= 0:  # -2 only on non-blocking streams; ours blocks
            raise HostImageError(f"the upload stream took no data (send returned {n})")
        view = view[n:]


def _abort(stream: Any) -> None:
    # the stream is broken already: the first error is the one to report
    with contextlib.suppress(Exception):
        stream.abort()


def upload_bytes(conn: Any, vol: Any, data: bytes) -> None:
    stream = conn.newStream(0)
    try:
        vol.upload(stream, 0, len(data), 0)
        _send(stream, data)
        stream.finish()
    except BaseException:
        _abort(stream)
        raise


def download(conn: Any, vol: Any, offset: int = 0, limit: int = 0,
             sink: Callable[[bytes], Any] | None = None) -> bytes:
    """A volume's bytes from `offset` to its end (or `limit` bytes) through libvirt; with
    `sink`, each chunk goes there and b"" is returned (for big volumes)."""
    chunks: list[bytes] = []
    stream = conn.newStream(0)
    try:
        vol.download(stream, offset, limit, 0)
        while True:
            data = stream.recv(CHUNK)
            if isinstance(data, int):
                raise HostImageError(f"download stream returned {data}")
            if not data:
                break
            if sink is not None:
                sink(data)
            else:
                chunks.append(data)
        stream.finish()
    except BaseException:
        _abort(stream)
        raise
    return b"".join(chunks)


def _refresh(pool: Any) -> None:
    """Let libvirt see files changed behind its back; it refuses while another upload into
    the pool runs, and lookups still work then."""
    try:
        pool.refresh(0)
    except _libvirt().libvirtError:
        pass


def _lookup(pool: Any, name: str) -> Any:
    libvirt = _libvirt()
    try:
        return pool.storageVolLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
            return None
        raise


def _delete_if_there(pool: Any, name: str) -> None:
    vol = _lookup(pool, name)
    if vol is not None:
        vol.delete(0)


# ---- a run's volumes -----------------------------------------------------------------------


def create_run_volume(run: RunRecord, conn: Any, pool: Any, name: str, xml: str,
                      uri: str | None = None) -> Any:
    """A volume of the run on the host, recorded (uri, pool, name) before it is made; `uri`
    (default: the connection's) is what cleanup connects to."""
    libvirt = _libvirt()
    uri = uri or _uri(conn)
    if not name.startswith(run.prefix + "-"):
        raise HostImageError(f"run volume `{name}` lacks the run prefix `{run.prefix}-`")
    run.record("libvirt-volume", uri=uri, pool=pool.name(), name=name)
    try:
        return pool.createXML(xml, 0)
    except libvirt.libvirtError as exc:
        raise HostImageError(f"cannot make volume {name} in pool {pool.name()} on "
                             f"{host_of(uri)} ({exc.get_error_message()})",
                             "a volume of that name left by a crashed run goes with "
                             "`lanalab clean`; else check free space in the pool") from None


def delete_volume(conn: Any, pool_name: str, name: str) -> bool:
    """Delete volume `name` of pool `pool_name`; False when it (or the pool) is not there."""
    libvirt = _libvirt()
    try:
        pool = conn.storagePoolLookupByName(pool_name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_POOL:
            return False
        raise
    vol = _lookup(pool, name)
    if vol is None:
        return False
    vol.delete(0)
    return True


__all__ = ["HostImageError", "ImageFile", "RemoteImage", "create_run_volume", "delete_volume",
           "download", "ensure_pool", "file_sha256", "image_files", "open_host",
           "overlay_xml", "pool_xml", "push_image", "run_volume_name", "stamp_name",
           "volume_name", "volume_xml"]
