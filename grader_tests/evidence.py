"""Evidence: plain arrays that the hidden cells record for the trusted re-check.

A hidden cell runs the student's code on grader-chosen inputs and stores what came out
(outputs, losses, weights) as ``.npz`` files without pickles. In a grading run the grader hands
inputs over the other way too: the test inputs, only when the forecast cell starts. The trusted process that is not
the student's kernel loads them and re-derives every verdict with the same judge functions.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

ENV_EVIDENCE_DIR = "JENALAB_EVIDENCE_DIR"
ENV_INBOX = "JENALAB_INBOX"  # a grading run hands the test inputs over here when the forecast cell starts
TEST_INPUTS = "test_inputs.npy"


class MissingEvidence(LookupError):
    """A check left no evidence (its cell did not run to the end)."""


def evidence_dir() -> Path | None:
    location = os.environ.get(ENV_EVIDENCE_DIR)
    return Path(location) if location else None


def record(check: str, evidence: dict) -> None:
    """Store one check's evidence where the grading run asked for it (nowhere otherwise)."""
    directory = evidence_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {key: np.asarray(value) for key, value in evidence.items()}
    for key, value in arrays.items():
        if value.dtype == object:
            raise TypeError(f"evidence {check}.{key} is not a plain array")
    np.savez(directory / f"{check}.npz", **arrays)


class MalformedEvidence(ValueError):
    """A check's evidence file is not what the check records (a forgery, or a broken file)."""


MAX_EVIDENCE_BYTES = 256 * 1024**2  # unpacked: far above any check's, far below a zip bomb's


def load(directory: Path, check: str) -> dict:
    """One check's evidence as plain Python/numpy values; pickles and oversized files are refused."""
    path = Path(directory) / f"{check}.npz"
    if not path.is_file():
        raise MissingEvidence(f"no evidence for {check} in {directory}")
    try:
        with zipfile.ZipFile(path) as archive:
            if sum(member.file_size for member in archive.infolist()) > MAX_EVIDENCE_BYTES:
                raise MalformedEvidence(f"{path.name} unpacks to more than {MAX_EVIDENCE_BYTES // 1024**2} MiB")
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key].item() if data[key].ndim == 0 else data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise MalformedEvidence(f"{path.name} cannot be read: {err}") from None
