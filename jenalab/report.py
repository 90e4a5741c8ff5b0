"""The class report of a grading run: one self-contained HTML page for the instructor.

It says what needs a person first (submissions the grader failed to grade, a threshold warning,
written answers waiting to be graded by hand), then every student's standing (a sortable table with
the automatic and hand-graded points, late penalty and total, linking each feedback page and graded
notebook), how the class did (totals, pass rates and the most common messages per graded cell),
which submissions were flagged, and how long grading took. Styles, the small sorting script and the
histogram (a PNG drawn by matplotlib's Agg backend) are inline, so the page works offline and can be
sent as one file; no other script may run in it. Every text that comes from a notebook or a worker is
escaped: messages quote student code.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import statistics
from collections import Counter
from html import escape
from pathlib import Path

from grader_tests.contract import ASSIGNMENT, AUTO_POINTS, GRADED_CELLS, MANUAL_POINTS, NOTEBOOK
from jenalab.course import autograded_dir, feedback_page
from jenalab.inert import with_csp
from jenalab.progress import format_duration
from jenalab.results import ClassRun, Result
from jenalab.similarity import ANSWER_THRESHOLD, CODE_THRESHOLD

TOP_MESSAGES = 5  # per graded cell; the rest is counted in one line
SIMILAR_PAIRS = 25  # the most similar pairs shown
MESSAGE_CHARS = 300  # longer messages (tracebacks, printed arrays) are cut
BIN_WIDTH = 5  # points per histogram bar

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       background: #f6f7f9; margin: 0; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; min-height: 100vh; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #d8dee4; }
p.summary { font-size: 16px; margin: 4px 0 16px; }
.muted { color: #636c76; }
.not-graded { color: #c62828; }
.box { border-left: 5px solid; border-radius: 4px; padding: 10px 16px; margin: 16px 0; }
.box h2 { border: 0; margin: 0 0 6px; }
.alert { border-color: #c62828; background: #fdecea; }
.warning { border-color: #b26a00; background: #fff4e0; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { text-align: left; vertical-align: top; padding: 5px 10px; border-bottom: 1px solid #e3e7eb; }
th { background: #eef1f4; font-weight: 600; }
tbody tr:nth-child(even) { background: #fafbfc; }
tbody + tbody { border-top: 2px solid #c9d1d9; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.message { white-space: pre-wrap; overflow-wrap: anywhere; }
code { font: 0.9em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.tag { font-size: 12px; padding: 1px 7px; border-radius: 10px; background: #ddf4e4; color: #1a5e2c;
       white-space: nowrap; }
.tag.earlier { background: #eef1f4; color: #57606a; }
.bar { display: flex; width: 180px; height: 12px; border-radius: 3px; overflow: hidden; background: #eef1f4;
       margin-top: 5px; }
.bar .full { background: #2e7d32; } .bar .partial { background: #f0a30a; } .bar .zero { background: #c62828; }
ul.flags { margin: 0; padding-left: 18px; }
img.histogram { max-width: 760px; width: 100%; height: auto; display: block; }
table.sortable th { cursor: pointer; }
.side { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; margin: 6px 0; }
.side pre { margin: 0; padding: 6px; background: #f6f8fa; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 12px; }
"""


def write_class_report(root: Path, run: ClassRun, wall_seconds: float | None = None, standings=None,
                       similar=None) -> Path:
    """Write reports/lstm_jena.html in the course folder `root` and return its path. `standings` (from
    `jenalab.gradesheet`) give the student table, `similar` the pairs of similar work (`jenalab.similarity`); without
    them those sections are left out."""
    results = sorted(run.results, key=lambda r: r.student)
    now = set(run.graded_now)
    sections = [_header(run, now, standings), _ungraded(run)]
    if standings:
        sections.append(_students(root, standings))
    if similar is not None:
        sections.append(_similar(similar))
    if results:
        sections += [_histogram(results), _pass_rates(results), _messages(results), _flagged(results, now),
                     _notebook_errors(results, now), _timing(results, now, wall_seconds)]
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{ASSIGNMENT}: class report</title><style>{STYLE}</style></head>\n"
            f"<body><main>\n" + "\n".join(s for s in sections if s) + f"\n</main><script>{SORTING}</script></body></html>\n")
    path = root / "reports" / f"{ASSIGNMENT}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(with_csp(page, scripts=[SORTING]), encoding="utf-8")
    return path


def _header(run: ClassRun, now: set[str], standings=None) -> str:
    date = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    graded, ungraded = len(run.results), len(run.infrastructure)
    in_run = sum(r.student in now for r in run.results)
    summary = (f"{graded + ungraded} submission(s): <strong>{graded} graded</strong> ({in_run} in this run, "
               f"{graded - in_run} earlier)")
    if ungraded:
        summary += f', <strong class="not-graded">{ungraded} NOT graded</strong>'
    html = (f"<h1>Class report: <code>{escape(ASSIGNMENT)}</code></h1>"
            f'<p class="muted">Written {escape(date)}. {AUTO_POINTS:g} points are graded automatically, '
            f"{MANUAL_POINTS:g} by hand (the written answers, in nbgrader's formgrader).</p>"
            f"<p class=\"summary\">{summary}.</p>")
    if standings:
        graded = sum(s.answers_graded for s in standings if s.automatic is not None)
        total = sum(s.answers for s in standings if s.automatic is not None)
        waiting = [s.student for s in standings if s.automatic is not None and s.answers_graded < s.answers]
        html += (f'<p class="summary">Hand grading: <strong>{graded} of {total}</strong> written answers graded'
                 + (f"; {len(waiting)} submission(s) still wait for a person." if waiting else ", all done.") + "</p>")
    if run.threshold_warning:
        html += ('<div class="box warning"><strong>Forecast points may be unfair:</strong> '
                 f"{escape(run.threshold_warning)}. Recalibrate (<code>jenalab calibrate</code>), then grade again."
                 "</div>")
    return html


SORTING = """
document.querySelectorAll("table.sortable th").forEach(function (th, column) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0], rows = Array.from(body.rows);
    var up = th.dataset.order !== "up";
    th.closest("tr").querySelectorAll("th").forEach(function (other) { delete other.dataset.order; });
    th.dataset.order = up ? "up" : "down";
    rows.sort(function (a, b) {
      var x = a.cells[column].dataset.key || a.cells[column].textContent, y = b.cells[column].dataset.key || b.cells[column].textContent;
      if ((x === "") !== (y === "")) return x === "" ? 1 : -1;  // empty cells last, either way
      var order = (x !== "" && y !== "" && !isNaN(x) && !isNaN(y)) ? x - y : x.localeCompare(y);
      return up ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""


def _students(root: Path, standings) -> str:
    rows = []
    for s in standings:
        page, notebook = feedback_page(root, s.student), autograded_dir(root, s.student) / NOTEBOOK
        # The report lies in reports/: the pages are one folder up.
        links = " ".join(f'<a href="../{escape(path.relative_to(root).as_posix())}">{label}</a>'
                         for label, path in (("feedback", page), ("notebook", notebook)) if path.is_file())
        rows.append([s.student, s.name, s.status, _key(s.automatic), _Html(f"{s.by_hand:g} ({s.answers_graded}/{s.answers})",
                     "num"), _key(s.penalty or None), _key(s.total), s.submitted_at.strftime("%Y-%m-%d %H:%M") if s.submitted_at
                     else "", _num(len(s.flags) or ""), _Html(links)])
    headers = ["Student", "Name", "Status", _num(f"Automatic /{AUTO_POINTS:g}"), _num(f"By hand /{MANUAL_POINTS:g}"),
               _num("Late penalty"), _num(f"Total /{AUTO_POINTS + MANUAL_POINTS:g}"), "Submitted (UTC)", _num("Flags"),
               "Pages"]
    return ('<section id="students"><h2>Students</h2><p class="muted">Every student of the roster and every '
            "submission; click a column to sort. The total counts the points given by hand so far, minus any late "
            "penalty.</p>" + f'<table class="sortable">{_thead(headers)}{_tbody(rows)}</table></section>')


def _similar(pairs) -> str:
    intro = (f'<p class="muted">Pairs whose own code overlaps by {CODE_THRESHOLD:.0%} or more of either side (names '
             "normalised; the starter code and the textbook solution left out), or whose written answers overlap by "
             f"{ANSWER_THRESHOLD:.0%} or more, found by winnowing fingerprints (copydetect). A reason for a person to look, "
             "never a penalty: students may have worked from the same lecture example.</p>")
    if not pairs:
        return f'<section id="similar"><h2>Similar work</h2>{intro}<p>No pair reaches the threshold.</p></section>'
    rows = []
    for pair in pairs[:SIMILAR_PAIRS]:
        passages = "".join(f'<div class="side"><pre>{escape(a)}</pre><pre>{escape(b)}</pre></div>' for a, b in pair.passages)
        rows.append([pair.first, pair.second, _num(f"{pair.code:.0%}"), _num(f"{pair.answers:.0%}"),
                     _Html(f"<details><summary>matching passages</summary>{passages}</details>")])
    more = (f'<p class="muted">{len(pairs) - SIMILAR_PAIRS} more pair(s) above the threshold are not shown.</p>'
            if len(pairs) > SIMILAR_PAIRS else "")
    return (f'<section id="similar"><h2>Similar work</h2>{intro}'
            + _table(["Student", "Student", _num("Code"), _num("Answers"), "Where"], rows) + more + "</section>")


def _key(value) -> _Html:
    """A number cell that sorts by its value (empty when there is none)."""
    return _Html("" if value is None else escape(f"{value:g}"), "num")


def _ungraded(run: ClassRun) -> str:
    if not run.infrastructure:
        return ""
    rows = [[i.student, i.worker or "(unknown)", _message(i.message)]
            for i in sorted(run.infrastructure, key=lambda i: i.student)]
    return (f'<section id="ungraded" class="box alert"><h2>{len(rows)} submission(s) NOT graded</h2>'
            "<p>The grading machinery failed for these submissions, not the students: they have <strong>no grade"
            "</strong> from this run. Fix the cause below; the next <code>jenalab grade</code> grades them.</p>"
            + _table(["Student", "Worker", "What failed"], rows) + "</section>")


def _histogram(results: list[Result]) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    totals = [r.total for r in results]
    median = statistics.median(totals)
    fig = Figure(figsize=(7.6, 2.8), dpi=150)  # no pyplot: no global backend, no figure left open
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    # Every bar counts the totals from its left edge up to (not including) its right edge, the top score too.
    edges = range(0, int(AUTO_POINTS) + 2 * BIN_WIDTH, BIN_WIDTH)
    ax.hist(totals, bins=edges, color="#4a78a8", edgecolor="white")
    ax.axvline(median, color="#1f2328", ls="--", lw=1)
    ax.annotate(f"median {median:g}", (median, 1), xycoords=("data", "axes fraction"), xytext=(0, 3),
                textcoords="offset points", fontsize=8, ha="center", va="bottom", annotation_clip=False)
    ax.set_xlim(0, AUTO_POINTS + BIN_WIDTH)
    ax.set_xticks(range(0, int(AUTO_POINTS) + 1, 10))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"automatic total (of {AUTO_POINTS:g} points)")
    ax.set_ylabel("submissions")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    image = base64.b64encode(buffer.getvalue()).decode()
    caption = (f"{len(totals)} graded submission(s): median {median:g}, mean {statistics.mean(totals):.1f}, "
               f"range {min(totals):g} to {max(totals):g}. Each bar counts the totals from its left edge up to, not "
               f"including, its right edge ({BIN_WIDTH} points).")
    return (f'<section id="totals"><h2>Automatic totals</h2><img class="histogram" alt="Histogram of the automatic '
            f'totals. {caption}" src="data:image/png;base64,{image}"><p class="muted">{caption}</p></section>')


def _pass_rates(results: list[Result]) -> str:
    rows = []
    for cell in GRADED_CELLS:
        scores = [r.scores.get(cell.grade_id, 0.0) for r in results]
        counts = {"full": sum(s >= cell.points for s in scores), "zero": sum(s <= 0 for s in scores)}
        counts["partial"] = len(scores) - counts["full"] - counts["zero"]
        bar = "".join(f'<span class="{kind}" style="width:{100 * counts[kind] / len(scores):.1f}%"></span>'
                      for kind in ("full", "partial", "zero"))
        shares = [_num(f"{counts[kind]} ({counts[kind] / len(scores):.0%})") for kind in ("full", "partial", "zero")]
        rows.append([_Html(f"<code>{escape(cell.grade_id)}</code>"), _num(f"{cell.points:g}"), *shares,
                     _Html(f'<div class="bar" title="full / partial / zero">{bar}</div>')])
    return ('<section id="pass-rates"><h2>Pass rates per graded cell</h2>'
            + _table(["Graded cell", _num("Points"), _num("Full points"), _num("Partial"), _num("Zero"), ""], rows)
            + "</section>")


def _messages(results: list[Result]) -> str:
    groups = []
    for cell in GRADED_CELLS:
        counts = Counter(text for r in results if (text := r.messages.get(cell.grade_id, "").strip())
                         and r.scores.get(cell.grade_id, 0.0) < cell.points)
        if not counts:
            continue
        rows = [[_Html(f"<code>{escape(cell.grade_id)}</code>" if i == 0 else ""), _num(n), _message(_cut(text))]
                for i, (text, n) in enumerate(counts.most_common(TOP_MESSAGES))]
        rest = [n for _, n in counts.most_common()[TOP_MESSAGES:]]
        if rest:
            rows.append(["", _num(sum(rest)), _Html(f'<span class="muted">{len(rest)} other message(s)</span>')])
        groups.append(rows)
    body = (f"<table>{_thead(['Graded cell', _num('Students'), 'Message'])}{''.join(map(_tbody, groups))}</table>"
            if groups else "<p>No messages: every check passed.</p>")
    return ('<section id="messages"><h2>Most common messages per graded cell</h2>'
            '<p class="muted">What students were told when they lost points; identical messages are grouped.</p>'
            + body + "</section>")


def _flagged(results: list[Result], now: set[str]) -> str:
    rows = [[r.student, _num(f"{r.total:g}"), _when(r, now),
             _Html('<ul class="flags">' + "".join(f"<li>{escape(f)}</li>" for f in r.flags) + "</ul>")]
            for r in results if r.flags]
    body = (_table(["Student", _num("Total"), "Graded", "Flags"], rows) if rows
            else "<p>No submission was flagged.</p>")
    return ('<section id="flagged"><h2>Flagged for review</h2><p class="muted">Reasons for a person to look; flags '
            "never change points, and a flagged cell waits for a manual grade in nbgrader.</p>" + body + "</section>")


def _notebook_errors(results: list[Result], now: set[str]) -> str:
    rows = [[r.student, _num(f"{r.total:g}"), _when(r, now), _message(r.error)]
            for r in results if r.error]
    if not rows:
        return ""
    return ('<section id="notebook-errors"><h2>Notebooks that did not run to the end</h2><p class="muted">Graded: the '
            "notebook itself failed (the student's doing); its points are those its cells earned before it stopped.</p>"
            + _table(["Student", _num("Total"), "Graded", "Error"], rows) + "</section>")


def _timing(results: list[Result], now: set[str], wall_seconds: float | None) -> str:
    this_run = [r.seconds for r in results if r.student in now]
    if this_run:
        summary = (f"This run graded {len(this_run)} submission(s): median {statistics.median(this_run):.1f} s, "
                   f"total {format_duration(sum(this_run))} of grading time")
        summary += f"; the run took {format_duration(wall_seconds)} of wall time." if wall_seconds is not None else "."
    else:
        summary = "This run graded nothing: every grade below is from an earlier run."
    rows = [[r.student, _num(f"{r.seconds:.1f}"), r.worker, _when(r, now)]
            for r in sorted(results, key=lambda r: r.seconds, reverse=True)]
    return (f'<section id="timing"><h2>Grading time per submission</h2><p>{summary}</p>'
            + _table(["Student", _num("Seconds"), "Worker", "Graded"], rows) + "</section>")


# --- small HTML helpers ----------------------------------------------------------------------------


class _Html(str):
    """Markup built here (any other text put in a table is escaped), with the class of its table cell."""

    def __new__(cls, markup: str, css: str = ""):
        html = super().__new__(cls, markup)
        html.css = css
        return html


def _num(value) -> _Html:
    return _Html(escape(str(value)), "num")


def _message(text: str) -> _Html:
    return _Html(escape(text), "message")


def _cell(tag: str, value) -> str:
    if not isinstance(value, _Html):
        value = _Html(escape(str(value)))
    css = f' class="{value.css}"' if value.css else ""
    return f"<{tag}{css}>{value}</{tag}>"


def _thead(headers: list) -> str:
    return "<thead><tr>" + "".join(_cell("th", h) for h in headers) + "</tr></thead>"


def _tbody(rows: list[list]) -> str:
    return "<tbody>" + "".join("<tr>" + "".join(_cell("td", v) for v in row) + "</tr>" for row in rows) + "</tbody>"


def _table(headers: list, rows: list[list]) -> str:
    return f"<table>{_thead(headers)}{_tbody(rows)}</table>"


def _when(result: Result, now: set[str]) -> _Html:
    if result.student in now:
        return _Html('<span class="tag">this run</span>')
    when = f", {result.graded_at[:16].replace('T', ' ')} UTC" if result.graded_at else ""  # store writes UTC
    return _Html(f'<span class="tag earlier">earlier{escape(when)}</span>')


def _cut(text: str) -> str:
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1].rstrip() + "…"
