"""Caps on what a grading kernel's messages may weigh, applied by its launcher before any client
sees them.

A notebook can print gigabytes or display a 40 MB image. Everything it outputs travels as Jupyter
messages through the launcher (`jenalab.sandbox_kernel`), so the launcher counts them: one output,
all outputs of one cell (the messages of one execute request) and of the whole notebook each have a
cap; an output beyond a cap is replaced by a short note for the student, once per cell, and dropped
after that. The grader's own records (exported models) have a separate budget. Replies on the
shell channel lose their oversized payloads. So the grading process never holds more than a few
MiB of what a notebook printed.
"""

from __future__ import annotations

import hashlib
import hmac
import json

DELIMITER = b"<IDS|MSG>"
OUTPUTS = {"stream", "display_data", "execute_result", "update_display_data", "error"}
LARGE = 1024**2  # a message other than an output above this is cut down or dropped
MiB = 1024**2


class Screen:
    """Screens kernel->client messages of one kernel (one instance per channel)."""

    def __init__(self, key: bytes, scheme: str, output_bytes: int, cell_bytes: int, notebook_bytes: int,
                 record_bytes: int, record_mime: str):
        self.key, self.digest = key, getattr(hashlib, scheme.removeprefix("hmac-"))
        self.output_bytes, self.cell_bytes, self.notebook_bytes = output_bytes, cell_bytes, notebook_bytes
        self.record_bytes, self.record_mime = record_bytes, record_mime.encode()
        self.per_cell: dict[str, int] = {}
        self.noted: set[str] = set()  # cells that got their note already
        self.notebook = self.records = 0

    def sign(self, *parts: bytes) -> bytes:
        if not self.key:
            return b""
        mac = hmac.new(self.key, digestmod=self.digest)
        for part in parts:
            mac.update(part)
        return mac.hexdigest().encode()

    def iopub(self, frames: list[bytes]) -> list[bytes] | None:
        """The message to pass on (possibly a note instead), or None to drop it."""
        try:
            i = frames.index(DELIMITER)
            header = json.loads(frames[i + 2])
            parent = json.loads(frames[i + 3]).get("msg_id", "")
        except (ValueError, IndexError, AttributeError):
            return frames  # not a Jupyter message: the client drops it
        size = sum(len(f) for f in frames[i + 5:])
        if header.get("msg_type") not in OUTPUTS:
            return frames if size <= LARGE else None
        if header.get("msg_type") == "display_data" and self._is_record(frames[i + 5]):
            if self.records + size <= self.record_bytes:
                self.records += size
                return frames
            return self._note(frames, i, header, parent, f"the grader's records went over {self.record_bytes // MiB} MiB")
        cell = self.per_cell.get(parent, 0)
        if size > self.output_bytes:
            why = f"one output was larger than {self.output_bytes // MiB} MiB"
        elif cell + size > self.cell_bytes:
            why = f"this cell's output went over {self.cell_bytes // MiB} MiB"
        elif self.notebook + size > self.notebook_bytes:
            why = f"the notebook's output went over {self.notebook_bytes // MiB} MiB"
        else:
            self.per_cell[parent], self.notebook = cell + size, self.notebook + size
            return frames
        return self._note(frames, i, header, parent, why)

    def _is_record(self, content: bytes) -> bool:
        if self.record_mime not in content[:512]:
            return False
        try:
            data = json.loads(content).get("data")
        except ValueError:
            return False
        return isinstance(data, dict) and set(data) == {self.record_mime.decode()}

    def _note(self, frames, i, header, parent: str, why: str) -> list[bytes] | None:
        if parent in self.noted:
            return None
        self.noted.add(parent)
        text = (f"[Output removed: {why}, the most the grader keeps. Print less: a summary instead of every "
                "value, fewer or smaller figures.]\n")
        return self._replace(frames, i, dict(header, msg_type="stream"), {"name": "stdout", "text": text})

    def shell(self, frames: list[bytes]) -> list[bytes] | None:
        """Replies: an oversized execute reply loses its payloads; other oversized replies are dropped."""
        try:
            i = frames.index(DELIMITER)
        except ValueError:
            return frames
        if sum(len(f) for f in frames[i + 5:]) <= LARGE:
            return frames
        try:
            header, content = json.loads(frames[i + 2]), json.loads(frames[i + 5])
        except ValueError:
            return None
        if header.get("msg_type") != "execute_reply" or not isinstance(content, dict):
            return None
        content.update(payload=[], user_expressions={})
        for key in ("ename", "evalue"):
            content[key] = str(content.get(key, ""))[:1000]
        content["traceback"] = [str(content.get("traceback", ""))[:1000]]
        return self._replace(frames, i, header, content)

    def _replace(self, frames, i, header: dict, content: dict) -> list[bytes]:
        parts = [json.dumps(header).encode(), frames[i + 3], b"{}", json.dumps(content).encode()]
        return [*frames[:i + 1], self.sign(*parts), *parts]
