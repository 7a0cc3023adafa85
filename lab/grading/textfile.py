"""A student's source file must be text before a tool reads it: compilers echo the lines
they reject, and bytes that are not UTF-8 would otherwise end a check with a decoding
error instead of telling the student what is wrong with the file."""

from __future__ import annotations

from pathlib import Path


def not_text(path: Path) -> str | None:
    """Why path is not a plain UTF-8 text file, or None if it is."""
    data = path.read_bytes()
    nul = data.find(b"\0")
    if nul >= 0:
        return (f"{path.name} is not a text file (it holds a NUL byte at offset {nul}): "
                "save it as plain text")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (f"{path.name} is not plain UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                f"{exc.start}): save it as plain text, e.g. from a text editor")
    return None
