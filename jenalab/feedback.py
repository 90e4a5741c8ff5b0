"""nbgrader feedback preprocessors: students see what failed and the grader's verdict, never the
hidden checks' code, the solutions or anything else that is not theirs.

They run in ``nbgrader generate_feedback`` (configured in the course's ``nbgrader_config.py``) on
``autograded/<student>/lstm_jena/lstm_jena.ipynb``; the ledger beside it holds the verdicts.
"""

from __future__ import annotations

import json
from pathlib import Path

from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade

from grader_tests.contract import ASSIGNMENT, NOTEBOOK
from jenalab.leaks import REDACTED, Redactor


def _notebook_folder(resources) -> Path:
    return Path(resources["metadata"]["path"])


class ShortTracebacks(NbGraderPreprocessor):
    """Replace the traceback of a failed graded cell by its last line (error type and message).

    A traceback shows source lines of every frame, including the hidden checks' own code;
    the message itself is written for the student and says what was expected and found.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and is_grade(cell):
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources


class RedactLeaks(NbGraderPreprocessor):
    """Remove every output that carries grader or solution text the student was not given."""

    def preprocess(self, nb, resources):
        folder = _notebook_folder(resources)  # <course>/autograded/<student>/lstm_jena
        course, student = folder.parents[2], resources["nbgrader"]["student"]
        self.redactor = Redactor(course, course / "submitted" / student / ASSIGNMENT / NOTEBOOK)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        for i, output in enumerate(cell.get("outputs", [])):
            if self.redactor.leaks(json.dumps(output)):
                cell.outputs[i] = new_output("stream", name="stdout", text=REDACTED + "\n")
        return cell, resources


class GraderVerdicts(NbGraderPreprocessor):
    """Show under each graded cell the verdict that counts: the trusted re-check's, from the ledger."""

    def preprocess(self, nb, resources):
        ledger = _notebook_folder(resources) / "grading.json"
        self.ledger = json.loads(ledger.read_text()) if ledger.is_file() else None
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if self.ledger is None or cell.cell_type != "code" or grade_id not in self.ledger["scores"]:
            return cell, resources
        points, most = self.ledger["scores"][grade_id], self.ledger["max_scores"][grade_id]
        message = self.ledger["messages"].get(grade_id, "")
        cell.outputs.append(new_output("stream", name="stdout",
                                       text=f"Grader: {points:g} of {most:g} points." + (f" {message}" if message else "") + "\n"))
        return cell, resources
