"""Length-prefixed JSON frames over pipes (host <-> worker, child -> worker). JSON only: nothing is ever eval'd."""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

_HEADER = struct.Struct(">I")
MAX_FRAME = 256 << 20


def encode(obj: Any) -> bytes:
    data = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
    return _HEADER.pack(len(data)) + data


def decode(data: bytes) -> Any:
    """The object of one complete frame; ValueError when `data` is anything else."""
    if len(data) < _HEADER.size or _HEADER.unpack_from(data)[0] != len(data) - _HEADER.size:
        raise ValueError("incomplete or oversized frame")
    return json.loads(data[_HEADER.size:])


def write_frame(fd: int, obj: Any) -> None:
    view = memoryview(encode(obj))
    while view:
        view = view[os.write(fd, view):]


def read_frame(fd: int, deadline: float | None = None) -> Any:
    """Next frame from `fd`; None on EOF or when `deadline` (time.monotonic) passes first."""
    header = _read_exact(fd, _HEADER.size, deadline)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes exceeds {MAX_FRAME}")
    body = _read_exact(fd, size, deadline)
    return None if body is None else json.loads(body)


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)
