"""The feedback page a student receives: what each check found, said once, in the lab's own terms, and
nothing that is not theirs.

nbgrader's ``generate_feedback`` runs these preprocessors (configured in the course's
``nbgrader_config.py``) on ``autograded/<student>/lstm_jena/lstm_jena.ipynb``, whose ledger
(``grading.json``) holds the trusted verdicts, and renders the page with `InertFeedbackExporter`:

* `RedactLeaks` removes every output that carries grader or solution text the student was not given;
* `StudentView` shows the outputs the student saw where grading ran with other paths (the grader's
  copy of the data);
* `GraderVerdicts` replaces what a graded cell printed by one verdict: points and message;
* `PageFacts` names each graded cell and written answer by the part it belongs to, marks written
  answers that wait for a person as "graded by hand: pending", and sums the score up as it stands
  (automatic points of 80 until the written answers are graded, then the total of 100).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
from nbconvert.exporters import HTMLExporter
from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets.config import Config

from grader_tests.contract import ASSIGNMENT, AUTO_POINTS, GRADED, MANUAL_POINTS, NOTEBOOK, NOTEBOOK_ID, WRITTEN_ANSWERS
from jenalab.gradesheet import points
from jenalab.inert import inert_outputs, with_csp
from jenalab.leaks import REDACTED, Redactor

TEMPLATES = Path(__file__).with_name("templates")
GRADING_PATH = re.compile(r"/grading/[\w./-]+")  # where a grading kernel finds its data and collectors
WHAT = {"mode": "the mode of operation", "model": "WeatherLSTM", "loss": "choose_loss", "train_one_epoch": "train_one_epoch",
        "evaluate": "evaluate", "fit": "fit", "forecast": "the final model's forecast"}
POINTS_NOTE = re.compile(r"\s*\(\d+(\s*x\s*\d+)? points?\)\s*$")


def _notebook_folder(resources) -> Path:
    return Path(resources["metadata"]["path"])  # <course>/autograded/<student>/lstm_jena


def _submitted(resources) -> Path:
    folder = _notebook_folder(resources)
    return folder.parents[2] / "submitted" / resources["nbgrader"]["student"] / ASSIGNMENT / NOTEBOOK


class RedactLeaks(NbGraderPreprocessor):
    """Remove every output that carries grader or solution text the student was not given."""

    def preprocess(self, nb, resources):
        self.redactor = Redactor(_notebook_folder(resources).parents[2], _submitted(resources))
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        for i, output in enumerate(cell.get("outputs", [])):
            if self.redactor.leaks(json.dumps(output)):
                cell.outputs[i] = new_output("stream", name="stdout", text=REDACTED + "\n")
        return cell, resources


class StudentView(NbGraderPreprocessor):
    """Where a cell printed the grader's paths, show what the student's own run printed for it (made inert), or
    else name the data instead of the path."""

    def preprocess(self, nb, resources):
        try:
            own = nbformat.read(_submitted(resources), as_version=4).cells
        except Exception:  # unreadable: there is nothing of theirs to show
            own = []
        self.own = {c.get("id"): c.get("outputs", []) for c in own if c.get("cell_type") == "code"}
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not GRADING_PATH.search(json.dumps(cell.get("outputs", []))):
            return cell, resources
        if self.own.get(cell.get("id")):
            cell.outputs = inert_outputs(self.own[cell.id])
        else:
            cell.outputs = [nbformat.from_dict(json.loads(GRADING_PATH.sub("(the grader's copy of the data)",
                                                                             json.dumps(o)))) for o in cell.outputs]
        return cell, resources


class GraderVerdicts(NbGraderPreprocessor):
    """Under each graded cell, one verdict: the trusted one from the ledger, in place of what the cell printed."""

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
        cell.outputs = [new_output("stream", name="stdout",
                                   text=f"Grader: {points:g} of {most:g} points." + (f" {message}" if message else "") + "\n")]
        return cell, resources


class PageFacts(NbGraderPreprocessor):
    """Names, pending answers and the score as it stands, for the template (``jenalab_feedback``)."""

    def preprocess(self, nb, resources):
        from nbgrader.api import Gradebook

        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gradebook:
            automatic, by_hand, answered = points(gradebook.find_submission_notebook(NOTEBOOK_ID, ASSIGNMENT,
                                                                                     info["student"]).grades)
        part = ""
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if cell.cell_type == "markdown" and (heading := re.search(r"^##\s+(.+)$", cell.source, flags=re.M)):
                part = POINTS_NOTE.sub("", heading.group(1)).strip()
            if grade_id in GRADED:
                cell.metadata["jenalab"] = {"title": f"{part}: {WHAT[GRADED[grade_id].check]}",
                                            "points": GRADED[grade_id].points, "pending": False, "by_hand": False}
            elif grade_id in WRITTEN_ANSWERS:
                cell.metadata["jenalab"] = {"title": f"{part}: written answer", "points": WRITTEN_ANSWERS[grade_id],
                                            "pending": grade_id not in answered, "by_hand": True}
        penalty = float(info.get("late_penalty") or 0)
        late = f", late penalty -{penalty:g}" if penalty else ""
        if len(answered) < len(WRITTEN_ANSWERS):
            summary = (f"Automatic points: {automatic:g} of {AUTO_POINTS:g}{late}. Written answers ({MANUAL_POINTS:g} "
                       f"points): graded by hand, pending ({len(answered)} of {len(WRITTEN_ANSWERS)} graded so far). "
                       f"Your total of {AUTO_POINTS + MANUAL_POINTS:g} follows once they are graded.")
        else:
            summary = (f"Score: {automatic + by_hand - penalty:g} of {AUTO_POINTS + MANUAL_POINTS:g} (automatic "
                       f"{automatic:g} of {AUTO_POINTS:g}, by hand {by_hand:g} of {MANUAL_POINTS:g}{late}).")
        resources["jenalab"] = {"title": f"{ASSIGNMENT}: feedback for {info['student']}", "summary": summary}
        return nb, resources


class InertFeedbackExporter(HTMLExporter):
    """The feedback page (template ``jenalab_feedback``), with a policy that lets no script run in it: student output
    stays inert even where sanitising missed something."""

    def __init__(self, config=None, **kwargs):
        import nbgrader

        # This class's own section outranks the HTMLExporter section nbgrader writes for its feedback template.
        config = Config(config or {})
        nbgrader_templates = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"
        config.InertFeedbackExporter.template_name = "jenalab_feedback"
        config.InertFeedbackExporter.extra_template_basedirs = [str(TEMPLATES), str(nbgrader_templates)]
        # where 'feedback/index.html.j2', nbgrader's page that ours extends, is found by that name
        paths = list(config.HTMLExporter.get("extra_template_paths", []))
        config.InertFeedbackExporter.extra_template_paths = [*paths, str(nbgrader_templates)]
        super().__init__(config=config, **kwargs)

    def from_notebook_node(self, nb, resources=None, **kw):
        output, resources = super().from_notebook_node(nb, resources, **kw)
        return with_csp(output), resources
