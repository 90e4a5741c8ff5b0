"""An nbgrader feedback preprocessor: students see what failed, never the hidden checks' code."""

from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade


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
