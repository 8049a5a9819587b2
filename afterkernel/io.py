"""Atomic, self-describing HDF5 files.

Every file the workflow writes goes through :func:`atomic_h5`: the data are
written to a hidden temporary file beside the target and renamed into place
only once the file is complete and closed, so a job killed mid-write never
leaves a file that a later job could read as finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from afterkernel import __version__


def _temporary_beside(path: Path) -> str:
    """A new hidden file beside ``path`` with the usual umask permissions
    (mkstemp alone would make every result readable by its owner only)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    os.close(fd)
    return tmp


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Open ``path`` for writing so that it appears only when complete.

    The file carries the attribute ``code_version``; on any exception the
    temporary file is removed and nothing is left at ``path``.
    """
    with atomic_file(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["code_version"] = __version__
        yield f


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically (temporary file, then rename)."""
    with atomic_file(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def set_attrs(obj: h5py.HLObject, attrs: dict[str, Any]) -> None:
    """Store ``attrs`` on an HDF5 object; dicts and lists are stored as JSON."""
    for key, value in attrs.items():
        if value is None:
            value = "null"
        elif isinstance(value, (dict, list, tuple)):
            value = json.dumps(value)
        elif isinstance(value, np.generic):
            value = value.item()
        obj.attrs[key] = value


def get_attrs(obj: h5py.HLObject) -> dict[str, Any]:
    """Read an HDF5 object's attributes as plain Python values."""
    out = {}
    for key, value in obj.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, str) and value[:1] in "[{" or value == "null":
            try:
                value = json.loads(value)
            except (TypeError, ValueError):
                pass
        out[key] = value
    return out


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[str]:
    """Yield the path of a temporary file beside ``path`` (created empty,
    with the umask's permissions) to write in any way; renamed to ``path``
    when the block ends, removed if it raises. The one atomic write of the
    package: :func:`atomic_h5`, :func:`atomic_write_text` and the figures
    use it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
