"""The `jenalab` command: data summary, release generation, grading and calibration.

Every command works on the course folder: the working directory, or the one given with --course.
Exit status: 0 done; 1 some submissions could not be graded (the grader failed, not the student)
or calibration was not accepted; 2 the command could not run (wrong folder, name, data, nbgrader).
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from pathlib import Path

from jena_weather.data import ENV_FILE, JenaDataError
from grader_tests.contract import ASSIGNMENT
from jenalab.course import CourseError, NbgraderError, check_students, course_root, students_of


def summary(args: argparse.Namespace) -> int:
    """Build the lab's tensors and print split sizes, features and baseline errors."""
    from jena_weather.baselines import baseline_errors
    from jena_weather.pipeline import SPLITS, build_windows

    windows = build_windows(path=args.data, periods=SPLITS)
    print(windows.summary())
    print("Baseline MAE (degC):        val     test")
    for name, errors in baseline_errors(windows).items():
        print(f"  {name:<22} {errors['val']:>7.3f}  {errors['test']:>7.3f}")
    return 0


def release(args: argparse.Namespace) -> int:
    """Generate the student version release/lstm_jena/ with nbgrader."""
    from jenalab.course import generate_release

    print(f"Student release written to {generate_release(course_root(args.course))}")
    return 0


def grade(args: argparse.Namespace) -> int:
    """Grade every submission in submitted/ (sandboxed autograde, trusted re-check, gradebook, feedback)."""
    from jenalab.grading import Options, grade_class

    options = Options(workers=args.workers, scheduler=args.scheduler, worker_wait=args.worker_wait, regrade=args.regrade,
                      cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
                      strict_thresholds=args.strict_thresholds, require_isolation=args.require_isolation)
    run = grade_class(course_root(args.course), options, students=args.student or None)
    print_table(run.results)
    return 1 if run.infrastructure else 0


def calibrate(args: argparse.Namespace) -> int:
    """Calibrate the forecast thresholds on the data in use; exit 1 when the acceptance rule fails."""
    from grader_tests.thresholds import FILE_NAME
    from jenalab.calibration import calibrate as run, set_notebook_bar, write_report, write_thresholds
    from jenalab.course import generate_release

    root = course_root(args.course)
    calibration = run(root, seeds=args.seeds, processes=args.processes, epochs=args.epochs, bar_seeds=args.bar_seeds)
    target = Path(args.output) if args.output else root / "grader_tests"
    target.mkdir(parents=True, exist_ok=True)
    report = write_report(calibration, target / "calibration", command=_command_line())
    print(f"Report: {report}")
    if not calibration.accepted:
        print("Thresholds NOT accepted (nothing written):\n  " + "\n  ".join(calibration.problems), file=sys.stderr)
        return 1
    write_thresholds(calibration, target / FILE_NAME)
    print(f"Thresholds written to {target / FILE_NAME}: "
          + ", ".join(f"<= {t['max_ratio']:.4f} -> {t['fraction']:g}" for t in calibration.tiers)
          + f"; validation bar {calibration.validation_bar}; implausible below {calibration.implausible_below}")
    if not args.output and set_notebook_bar(root, calibration.validation_bar):
        print(f"Validation bar written into the notebook; release regenerated: {generate_release(root)}")
    return 0


def corpus(args: argparse.Namespace) -> int:
    """Grade the submissions corpus in a scratch folder and write grader_tests/calibration/corpus.md."""
    import tempfile

    from jenalab.corpus import CORPUS_REPORT, grade_corpus, matrix_markdown
    from jenalab.course import students_of
    from jenalab.store import load_result

    root = course_root(args.course)
    ungraded = []
    if args.graded:  # render the results of an earlier run (for example the test suite's)
        graded = Path(args.graded)
        results = [r for r in (load_result(graded, s) for s in students_of(graded)) if r is not None]
    else:
        scratch = Path(tempfile.mkdtemp(prefix="jenalab-corpus-"))
        run = grade_corpus(root, scratch, workers=args.workers)
        results, ungraded = run.results, run.infrastructure
        print(f"Graded in the scratch course {scratch} (remove it when done).")
    # a scratch path would mean nothing to a reader of the committed report
    command = "jenalab corpus --graded COURSE" if args.graded else _command_line()
    (root / CORPUS_REPORT).write_text(matrix_markdown(root, results, command))
    print(f"Written {root / CORPUS_REPORT}")
    return 1 if ungraded else 0


def report(args: argparse.Namespace) -> int:
    """Write the class report again from the stored grades (after hand grading, for example)."""
    from jenalab.course import students_of
    from jenalab.gradesheet import standings
    from jenalab.report import write_class_report
    from jenalab.results import ClassRun
    from jenalab.store import load_result

    root = course_root(args.course)
    from jenalab.similarity import class_similarity

    results = [r for r in (load_result(root, s) for s in students_of(root)) if r is not None]
    path = write_class_report(root, ClassRun(results=results), standings=standings(root), similar=class_similarity(root))
    print(f"Class report: {path}")
    return 0


def feedback(args: argparse.Namespace) -> int:
    """Render the feedback pages again with the points given by hand and late penalties (after hand grading)."""
    from jenalab.course import regenerate_feedback, students_of
    from jenalab.gradesheet import standings
    from jenalab.store import load_result

    root = course_root(args.course)
    if args.student:
        check_students(root, args.student)
    graded = [s for s in args.student or students_of(root) if load_result(root, s) is not None]
    standings(root)  # late penalties up to date in the gradebook, where the pages read them
    failed = regenerate_feedback(root, graded)
    print(f"Feedback written for {len(graded) - len(failed)} student(s) in feedback/<student>/{ASSIGNMENT}/")
    if failed:
        print(f"nbgrader could not render the feedback of: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def export(args: argparse.Namespace) -> int:
    """Write the final grades for the LMS: a generic CSV and Canvas's gradebook import layout."""
    from jenalab.export import export as run

    done = run(course_root(args.course), Path(args.canvas) if args.canvas else None, args.canvas_column)
    print(f"Written {done.generic} and {done.canvas}")
    if done.left_empty:
        print(f"Left empty in the Canvas file (export again when they are done): {'; '.join(done.left_empty)}")
    if done.not_in_canvas:
        print(f"Not in the Canvas file (no row to fill): {', '.join(done.not_in_canvas)}")
    return 0


def collect(args: argparse.Namespace) -> int:
    """Take in a zip of submissions downloaded from Canvas or Moodle (nbgrader zip_collect, matched to the roster)."""
    from jenalab.lms import collect_zip

    done = collect_zip(course_root(args.course), Path(args.download), args.zip_timezone)
    print(f"Collected {len(done.students)} submission(s) into submitted/: {', '.join(done.students) or 'none'}")
    if done.unmatched:
        print(f"{len(done.unmatched)} notebook(s) match no one on the roster (left alone):\n  " + "\n  ".join(done.unmatched))
    return 0


def due(args: argparse.Namespace) -> int:
    """Set the assignment's due date (stored in nbgrader's gradebook)."""
    from nbgrader.api import Gradebook

    from jenalab.course import gradebook_url
    from jenalab.deadlines import parse_time, set_due

    root = course_root(args.course)
    when = parse_time(args.when, args.timezone)
    with Gradebook(gradebook_url(root)) as gradebook:
        set_due(gradebook, when)
    print(f"{ASSIGNMENT} is due {when:%Y-%m-%d %H:%M} UTC")
    return 0


def extend(args: argparse.Namespace) -> int:
    """Give a student more time (replaces an earlier extension; 0 removes it)."""
    from nbgrader.api import Gradebook

    from jenalab.course import gradebook_url
    from jenalab.deadlines import extend as grant

    root = course_root(args.course)
    with Gradebook(gradebook_url(root)) as gradebook:
        if args.student not in {s.id for s in gradebook.students} | set(students_of(root)):
            raise CourseError(f"No student {args.student!r} on the roster or in submitted/.")
        grant(gradebook, args.student, days=args.days, hours=args.hours)
    print(f"{args.student}: {args.days:g} day(s) and {args.hours:g} hour(s) more for {ASSIGNMENT}")
    return 0


def _command_line() -> str:
    return " ".join(["jenalab", *sys.argv[1:]])


def print_table(results) -> None:
    width = max([28, *(len(r.student) for r in results)])
    print(f"\n{'student':<{width}} {'auto score':>10}  reason")
    for r in results:
        print(f"{r.student:<{width}} {r.total:>4g} / {r.max_total:<3g}  {r.reason[:110]}"
              + ("  [flagged]" if r.flags else ""))
    print("\nWritten: gradebook.db, grades.csv, autograded/<student>/lstm_jena/, feedback/<student>/lstm_jena/")


def demo(args: argparse.Namespace) -> int:
    """The course's main job, end to end: data summary, student release, grading of example submissions."""
    from jenalab.corpus import DEMO_SUBMISSIONS, load_corpus, write_submission
    from jenalab.grading import Options, grade_class

    root = course_root(args.course)
    if args.data:  # grading workers find the data through the environment
        os.environ[ENV_FILE] = os.path.abspath(args.data)
    summary(args)
    release(args)
    corpus = {s.name: s for s in load_corpus(root)}
    for name in DEMO_SUBMISSIONS:
        write_submission(corpus[name], root, root, student=f"example_{name}")
    print(f"\nGrading {len(DEMO_SUBMISSIONS)} example submissions from grader_tests/submissions/ ...")
    run = grade_class(root, Options(workers=args.workers), students=[f"example_{n}" for n in DEMO_SUBMISSIONS])
    print_table(run.results)
    return 1 if run.infrastructure else 0


def main(argv: list[str] | None = None) -> int:
    from jenalab.calibration import calibrate as calibration
    from jenalab.grading import Options

    # Each default has one home, the options or the function it configures; the help repeats it from there.
    grading_defaults = Options()
    calibration_defaults = {name: p.default for name, p in inspect.signature(calibration).parameters.items()}
    parser = argparse.ArgumentParser(prog="jenalab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--course", help="the course folder (default: the working directory)")
    commands = parser.add_subparsers(dest="command", required=True)
    parsers = {}
    for name, handler in (("summary", summary), ("release", release), ("collect", collect), ("due", due),
                          ("extend", extend), ("grade", grade), ("report", report), ("feedback", feedback),
                          ("export", export), ("calibrate", calibrate), ("corpus", corpus), ("demo", demo)):
        command = parsers[name] = commands.add_parser(name, help=handler.__doc__.splitlines()[0], description=handler.__doc__)
        command.set_defaults(handler=handler)
    for name in ("summary", "demo"):
        parsers[name].add_argument("--data", help="path to a Jena data file (default: $JENA_DATA_FILE, then the lookup order in jena_data/README.md)")
    for name in ("grade", "demo", "corpus"):
        parsers[name].add_argument("--workers", type=int, default=grading_defaults.workers,
                                   help=f"local grading processes (default {grading_defaults.workers})")
    grading = parsers["grade"]
    grading.add_argument("--scheduler", help="address of a Dask scheduler to grade on, e.g. tcp://host:8786 (default: local processes)")
    grading.add_argument("--worker-wait", type=float, default=grading_defaults.worker_wait, metavar="SECONDS",
                         help="with --scheduler: how long to wait for a worker that can grade when none is connected "
                              f"(default {grading_defaults.worker_wait:g}; batch jobs may start later)")
    grading.add_argument("--cell-timeout", type=int, default=grading_defaults.cell_timeout, metavar="SECONDS",
                         help="time limit of a cell (default: Execute.timeout of the course's nbgrader_config.py)")
    grading.add_argument("--notebook-timeout", type=int, default=grading_defaults.notebook_timeout, metavar="SECONDS",
                         help=f"time limit of a whole notebook (default {grading_defaults.notebook_timeout})")
    grading.add_argument("--regrade", action="store_true", help="grade again submissions graded before")
    grading.add_argument("--student", action="append", help="grade only this student (repeatable)")
    grading.add_argument("--strict-thresholds", action="store_true",
                         help="refuse to grade when the forecast thresholds were calibrated on other data")
    grading.add_argument("--require-isolation", action="store_true",
                         help="refuse to grade unless the grading kernel's filesystem is isolated (bubblewrap)")
    parsers["corpus"].add_argument("--graded", help="a course folder where the corpus was graded already")
    parsers["collect"].add_argument("download", help="the zip of submissions downloaded from the LMS")
    parsers["collect"].add_argument("--zip-timezone", default="UTC",
                                    help="time zone of the times in the zip, the LMS server's (default UTC)")
    parsers["due"].add_argument("when", help='date and time, e.g. "2026-12-20 23:59" or "2026-12-20T23:59+01:00"')
    parsers["due"].add_argument("--timezone", help="time zone of a date without offset, e.g. Europe/Berlin (default UTC)")
    parsers["extend"].add_argument("student")
    parsers["extend"].add_argument("--days", type=float, default=0.0)
    parsers["extend"].add_argument("--hours", type=float, default=0.0)
    parsers["feedback"].add_argument("--student", action="append", help="only this student (repeatable)")
    parsers["export"].add_argument("--canvas", metavar="CSV", help="Canvas's gradebook export, to fill in (its rows and columns kept)")
    parsers["export"].add_argument("--canvas-column", metavar="NAME",
                                   help="the assignment's column header in Canvas, e.g. 'LSTM lab (123456)' (default: lstm_jena)")
    calibrate_parser = parsers["calibrate"]
    calibrate_parser.add_argument("--seeds", type=int, default=calibration_defaults["seeds"],
                                  help=f"reference trainings (default {calibration_defaults['seeds']})")
    calibrate_parser.add_argument("--processes", type=int, default=calibration_defaults["processes"],
                                  help=f"parallel training processes (default {calibration_defaults['processes']})")
    calibrate_parser.add_argument("--epochs", type=int, help="reduced training budget (quick check; not for real thresholds)")
    calibrate_parser.add_argument("--bar-seeds", type=int, default=calibration_defaults["bar_seeds"],
                                  help=f"seeds of each short run behind the validation bar (default {calibration_defaults['bar_seeds']})")
    calibrate_parser.add_argument("--output", help="write thresholds and report here instead of grader_tests/")
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (JenaDataError, NbgraderError, CourseError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
