"""Evidence: what a hidden check records, and how it leaves the student's kernel.

A hidden check runs the student's code and records what came out as files: plain arrays (``.npz``
without pickles) and exported models (``.pt2``). In a grading run it publishes them as one display
output of its own type (``RECORD_MIME``); the grader takes that output out of the graded cell and
writes the files where the kernel cannot reach them. Nothing the kernel writes to disk counts.
Outside a grading run nothing is published.
"""

from __future__ import annotations

import base64
import io
import os
import zipfile
from pathlib import Path

import numpy as np

ENV_GRADING = "JENALAB_GRADING"  # set in a grading kernel: records are published
ENV_INBOX = "JENALAB_INBOX"  # where a grading run hands a hidden check what it needs, when its cell starts
RECORD_MIME = "application/vnd.jenalab.record+json"
MAX_RECORD_BYTES = 32 * 1024**2  # one file of a record: an exported model of several million weights fits


class MissingEvidence(LookupError):
    """A check left no evidence (its cell did not run to the end)."""


class MalformedEvidence(ValueError):
    """A check's evidence file is not what the check records (a forgery, or a broken file)."""


def grading() -> bool:
    return os.environ.get(ENV_GRADING) == "1"


def inbox() -> Path | None:
    location = os.environ.get(ENV_INBOX)
    return Path(location) if location else None


def npz_bytes(arrays: dict) -> bytes:
    """Plain arrays as .npz bytes; anything that is not a plain array is refused."""
    plain = {key: np.asarray(value) for key, value in arrays.items()}
    for key, value in plain.items():
        if value.dtype == object:
            raise TypeError(f"evidence {key} is not a plain array")
    buffer = io.BytesIO()
    np.savez(buffer, **plain)
    return buffer.getvalue()


def publish(check: str, files: dict[str, bytes]) -> None:
    """Hand a check's files to the grader (only in a grading run)."""
    if not grading():
        return
    from IPython.display import publish_display_data

    publish_display_data({RECORD_MIME: {"check": check, "files": {
        name: base64.b64encode(data).decode("ascii") for name, data in files.items()}}})


def record(check: str, evidence: dict) -> None:
    """Publish one check's arrays as ``<check>.npz``."""
    publish(check, {f"{check}.npz": npz_bytes(evidence)})


def load(directory: Path, check: str) -> dict[str, np.ndarray]:
    """One check's arrays (plain numpy arrays); pickles and oversized files are refused."""
    path = Path(directory) / f"{check}.npz"
    if not path.exists():
        raise MissingEvidence(f"no evidence for {check} in {directory}")
    try:
        with zipfile.ZipFile(path) as archive:
            if sum(member.file_size for member in archive.infolist()) > MAX_RECORD_BYTES:
                raise MalformedEvidence(f"{path.name} unpacks to more than {MAX_RECORD_BYTES // 1024**2} MiB")
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise MalformedEvidence(f"{path.name} cannot be read: {err}") from None
