# nbgrader configuration of the Jena LSTM lab. Run nbgrader commands from this folder.
c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.course_id = "jena_lstm_lab"
c.CourseDirectory.db_assignments = [dict(name="lstm_jena")]

# Student stubs say what to do instead of a bare NotImplementedError.
c.ClearSolutions.code_stub = dict(
    python='# YOUR CODE HERE\nraise NotImplementedError("Replace this line with your code, then run the cell again.")'
)

# Seconds per cell when nbgrader runs a notebook (default 30; training cells need more).
c.Execute.timeout = 600

# Feedback shows students one verdict per graded cell in the lab's own terms, written answers as pending until
# graded by hand, and never the hidden checks' code, the solutions or other text that is not theirs
# (see jenalab/feedback.py).
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "jenalab.feedback.RedactLeaks",
    "jenalab.feedback.StudentView",
    "jenalab.feedback.GraderVerdicts",
    "jenalab.feedback.PageFacts",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
# Student output is inert in every page: HTML and markdown sanitised (feedback and formgrader), and no
# script may run in a feedback page (see jenalab/inert.py).
c.HTMLExporter.sanitize_html = True
c.GenerateFeedback.exporter_class = "jenalab.feedback.InertFeedbackExporter"

# Grading records (evidence, ledger) stay with the instructor: never copied into feedback, and
# never taken from a submission.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "evidence", "grading.json"]
