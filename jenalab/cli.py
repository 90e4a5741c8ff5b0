"""The `jenalab` command: data summary, release generation, grading and calibration."""

from __future__ import annotations

import argparse
import os
import sys

from jenalab.course import NbgraderError
from jenalab.data import ENV_FILE, JenaDataError


def summary(args: argparse.Namespace) -> None:
    """Build the lab's tensors and print split sizes, features and baseline errors."""
    from jenalab.baselines import baseline_errors
    from jenalab.pipeline import build_windows

    windows = build_windows(path=args.data)
    print(windows.summary())
    print("Baseline MAE (degC):        val     test")
    for name, errors in baseline_errors(windows).items():
        print(f"  {name:<22} {errors['val']:>7.3f}  {errors['test']:>7.3f}")


def release(args: argparse.Namespace) -> None:
    """Generate the student version release/lstm_jena/ with nbgrader."""
    from jenalab.course import generate_release

    print(f"Student release written to {generate_release()}")


def grade(args: argparse.Namespace) -> None:
    """Grade every submission in submitted/ (sandboxed autograde, trusted re-check, gradebook, feedback)."""
    from jenalab.grading import Options, grade_class

    options = Options(workers=args.workers, scheduler=args.scheduler, regrade=args.regrade,
                      strict_thresholds=args.strict_thresholds)
    print_table(grade_class(options=options, students=args.student or None))


def calibrate(args: argparse.Namespace) -> None:
    """Calibrate the forecast thresholds on the data in use; exit 1 when the acceptance rule fails."""
    from pathlib import Path

    from jenalab.calibration import calibrate as run, write_report, write_thresholds

    from grader_tests.checks import THRESHOLDS_FILE

    calibration = run(seeds=args.seeds, processes=args.processes, epochs=args.epochs)
    target = Path(args.output) if args.output else THRESHOLDS_FILE.parent
    target.mkdir(parents=True, exist_ok=True)
    command = "jenalab calibrate " + " ".join(sys.argv[2:])
    report = write_report(calibration, target / "calibration", command=command.strip())
    print(f"Report: {report}")
    if not calibration.accepted:
        print("Thresholds NOT accepted (nothing written):\n  " + "\n  ".join(calibration.problems), file=sys.stderr)
        raise SystemExit(1)
    write_thresholds(calibration, target / THRESHOLDS_FILE.name)
    print(f"Thresholds written to {target / THRESHOLDS_FILE.name}: "
          + ", ".join(f"<= {t['max_ratio']:.4f} -> {t['fraction']:g}" for t in calibration.tiers))


def corpus(args: argparse.Namespace) -> None:
    """Grade the submissions corpus in a scratch folder and write grader_tests/calibration/corpus.md."""
    import tempfile
    from pathlib import Path

    from grader_tests.corpus import CORPUS_REPORT, grade_corpus, matrix_markdown
    from jenalab.grading import students_of, load_result

    if args.graded:  # render the results of an earlier run (for example the test suite's)
        root = Path(args.graded)
        results = [load_result(root, s) for s in students_of(root)]
        results = [r for r in results if r is not None]
    else:
        results = grade_corpus(Path(tempfile.mkdtemp(prefix="jenalab-corpus-")), workers=args.workers)
    command = "jenalab corpus " + " ".join(sys.argv[2:])
    CORPUS_REPORT.write_text(matrix_markdown(results, command.strip()))
    print(f"Written {CORPUS_REPORT}")


def print_table(results) -> None:
    print(f"\n{'student':<28} {'auto score':>10}  reason")
    for r in results:
        print(f"{r.student:<28} {r.total:>4g} / {r.max_total:<3g}  {r.reason[:110]}"
              + ("  [flagged]" if r.flags else ""))
    print("\nWritten: gradebook.db, grades.csv, autograded/<student>/lstm_jena/, feedback/<student>/lstm_jena/")


def demo(args: argparse.Namespace) -> None:
    """The course's main job, end to end: data summary, student release, grading of example submissions."""
    from jenalab.course import COURSE_ROOT
    from jenalab.grading import Options, grade_class

    from grader_tests.corpus import DEMO_SUBMISSIONS, load_corpus, write_submission

    if args.data:  # grading kernels find the data through the environment
        os.environ[ENV_FILE] = os.path.abspath(args.data)
    summary(args)
    release(args)
    corpus = {s.name: s for s in load_corpus()}
    for name in DEMO_SUBMISSIONS:
        write_submission(corpus[name], COURSE_ROOT / "submitted", student=f"example_{name}")
    print(f"\nGrading {len(DEMO_SUBMISSIONS)} example submissions from grader_tests/submissions/ ...")
    results = grade_class(options=Options(workers=args.workers), students=[f"example_{n}" for n in DEMO_SUBMISSIONS])
    print_table(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jenalab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    parsers = {}
    for name, handler in (("summary", summary), ("release", release), ("grade", grade), ("calibrate", calibrate),
                          ("corpus", corpus), ("demo", demo)):
        command = parsers[name] = commands.add_parser(name, help=handler.__doc__.splitlines()[0], description=handler.__doc__)
        command.set_defaults(handler=handler)
    for name in ("summary", "demo"):
        parsers[name].add_argument("--data", help="path to a Jena data file (default: $JENA_DATA_FILE, then the lookup order in jena_data/README.md)")
    for name in ("grade", "demo", "corpus"):
        parsers[name].add_argument("--workers", type=int, default=2, help="local grading processes (default 2)")
    parsers["grade"].add_argument("--scheduler", help="address of a Dask scheduler to grade on (default: local processes)")
    parsers["grade"].add_argument("--regrade", action="store_true", help="grade again submissions graded before")
    parsers["grade"].add_argument("--student", action="append", help="grade only this student (repeatable)")
    parsers["grade"].add_argument("--strict-thresholds", action="store_true",
                                  help="refuse to grade when the forecast thresholds were calibrated on other data")
    parsers["corpus"].add_argument("--graded", help="a course folder where the corpus was graded already")
    calibrate_parser = parsers["calibrate"]
    calibrate_parser.add_argument("--seeds", type=int, default=20, help="reference trainings (default 20)")
    calibrate_parser.add_argument("--processes", type=int, default=2, help="parallel training processes (default 2)")
    calibrate_parser.add_argument("--epochs", type=int, help="reduced training budget (quick check; not for real thresholds)")
    calibrate_parser.add_argument("--output", help="write thresholds and report here instead of grader_tests/")
    args = parser.parse_args(argv)
    try:
        args.handler(args)
    except (JenaDataError, NbgraderError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
