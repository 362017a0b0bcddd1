"""Replacing a file whole: a reader, a crash or a kill -9 sees the old content or the new, never half."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["replace_file"]


def replace_file(path: Path, data: bytes | str, *, mode: int | None = None, fsync: bool = False) -> None:
    """Write ``data`` to a scratch file beside ``path`` and rename it over ``path``.

    ``mode`` gives the new file exactly these permissions (a secret's 0600, or a settings file's own);
    without it the file is made as any new file is, under the umask. ``fsync`` flushes the data to
    disk before the rename, for state that must survive a power cut, not only a crash.
    """
    scratch = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")  # unique: two writers never share one
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(data.encode() if isinstance(data, str) else data)
            if fsync:
                out.flush()
                os.fsync(out.fileno())
        if mode is not None:
            os.chmod(scratch, mode)  # the umask may have taken bits the caller asked for
        os.replace(scratch, path)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
