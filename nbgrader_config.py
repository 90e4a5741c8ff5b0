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

# Feedback shows students the messages of failed checks and the grader's verdicts, never the hidden
# checks' code, the solutions or other text that is not theirs (see jenalab/feedback.py).
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "jenalab.feedback.ShortTracebacks",
    "jenalab.feedback.RedactLeaks",
    "jenalab.feedback.GraderVerdicts",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# Grading records (evidence, ledger) stay with the instructor: never copied into feedback, and
# never taken from a submission.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "evidence", "grading.json"]
