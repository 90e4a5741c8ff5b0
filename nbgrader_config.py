# nbgrader configuration of the Jena LSTM lab. Run nbgrader commands from this folder.
c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.course_id = "jena_lstm_lab"
c.CourseDirectory.db_assignments = [dict(name="lstm_jena")]
