# Lets `nbgrader validate lstm_jena.ipynb` run in this folder: training cells need more than
# nbgrader's default 30 s per cell.
c = get_config()  # noqa: F821 (provided by nbgrader)
c.Execute.timeout = 600
