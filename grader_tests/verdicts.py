"""Where every point is decided: a submission's records in, one verdict per graded cell out.

The grading worker (`jenalab.worker`) calls `judge_submission` outside the student's kernel with the
folder of records the grader took out of the graded cells (`<check>.npz`, and the exported models
`model.pt2` and `forecast.pt2`), the seeds it drew for the checks' problems (`problems.json` in the
same folder), the thresholds and the evaluator that runs exported models in a sandbox. Nothing the
kernel produced counts beyond those arrays and graphs:

1. every record is read as plain arrays (`evidence.load`); exported models are checked and turned
   into programs without ever being loaded (`archive.read_program`);
2. the evaluator runs the programs on inputs made here: probes of the model, and the test windows,
   which never entered the kernel;
3. each check's judge (`judges`, `probes`) rebuilds its problem from its seed, computes the right
   outcome and compares;
4. the kernel's own result (its test cell failed or passed) is compared with what its record says
   happened: where they disagree, either way, the submission is flagged; the trusted verdict counts.

A record that is missing, unreadable or not what its collector makes earns its cell nothing, with a
reason; any other error here is the grader's and propagates (the submission stays ungraded).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from grader_tests import judges, probes, problems
from grader_tests.archive import Refused, read_program
from grader_tests.contract import GRADED_CELLS
from grader_tests.evidence import MalformedEvidence, MissingEvidence, load
from grader_tests.judges import Record
from grader_tests.outcomes import CheckFailed, Partial, Unusable, Verdict

SEEDS = "problems.json"  # beside the records: the seed of each check's problem, drawn by the grader
ARCHIVES = {"model": "model.pt2", "forecast": "forecast.pt2"}
TRAINING_LOOP = ("train_one_epoch", "fit")  # what the final model is trained with
JUDGES = {"mode": judges.judge_mode, "loss": judges.judge_loss, "train_one_epoch": judges.judge_train_one_epoch,
          "evaluate": judges.judge_evaluate, "fit": judges.judge_fit}
UNREADABLE = "the hidden check's record is unreadable, so this cell earns nothing"
NOT_AS_MADE = "the hidden check's record is not what the check makes, so this cell earns nothing"


@lru_cache(maxsize=1)
def grading_windows():
    """All three periods of the data this process finds itself (the test period only the grader has)."""
    from jena_weather.pipeline import SPLITS, build_windows

    return build_windows(periods=SPLITS)


def _records(folder: Path) -> dict[str, Record | Verdict]:
    """Each check's record, or the verdict of a cell whose record cannot be read."""
    found = {}
    for cell in GRADED_CELLS:
        try:
            found[cell.check] = Record(load(folder, cell.check))
        except MissingEvidence:
            found[cell.check] = Verdict(0.0, "", recorded=False)
        except MalformedEvidence as err:
            found[cell.check] = Verdict(0.0, UNREADABLE, True, f"unreadable record of {cell.check}: {str(err)[:200]}")
    return found


def _programs(folder: Path, records: dict) -> dict[str, object]:
    """The exported models as programs (or why one was refused), for the checks that recorded one."""
    programs = {}
    for check, name in ARCHIVES.items():
        record = records[check]
        if not isinstance(record, Record) or record.failed():
            continue
        path = folder / name
        try:
            programs[check] = read_program(path.read_bytes()) if path.is_file() else Refused("no exported model was recorded")
        except Refused as refusal:
            programs[check] = refusal
    return programs


def judge_submission(folder: Path, thresholds: dict, evaluate, kernel_scores: dict | None = None,
                     windows=None) -> dict[str, Verdict]:
    """The trusted verdict of every graded cell, keyed by grade id.

    `evaluate(programs, inputs, runs)` runs exported programs (`jenalab.evaluator.evaluate`);
    `kernel_scores` are nbgrader's scores of the graded cells in the kernel, when known."""
    folder = Path(folder)
    seeds = json.loads((folder / SEEDS).read_text())
    windows = windows or grading_windows()
    records = _records(folder)
    programs = _programs(folder, records)
    inputs, runs = {}, []
    if "model" in programs and not isinstance(programs["model"], Refused):
        more = probes.probe_inputs("model", problems.model_case(seeds["model"]).inputs, seeds["model"])
        inputs.update(more[0])
        runs += more[1]
    if "forecast" in programs and not isinstance(programs["forecast"], Refused):
        for more in (probes.probe_inputs("forecast", problems.forecast_probe(seeds["forecast"], windows.n_features),
                                         seeds["forecast"]), probes.forecast_inputs(windows["test"].x.numpy())):
            inputs.update(more[0])
            runs += more[1]
    usable = {check: program for check, program in programs.items() if not isinstance(program, Refused)}
    results = evaluate(usable, inputs, runs) if runs else {}
    verdicts = {}
    for cell in GRADED_CELLS:
        verdict = _verdict(cell, records[cell.check], programs.get(cell.check), seeds.get(cell.check), results,
                           windows, thresholds)
        verdicts[cell.grade_id] = _with_kernel(verdict, records[cell.check], (kernel_scores or {}).get(cell.grade_id))
    return _first_things_first(verdicts)


def _first_things_first(verdicts: dict[str, Verdict]) -> dict[str, Verdict]:
    """A final model that misses full points after a training-loop check failed: say which to fix first."""
    forecast = next(cell.grade_id for cell in GRADED_CELLS if cell.check == "forecast")
    broken = [cell.check for cell in GRADED_CELLS if cell.check in TRAINING_LOOP
              and verdicts[cell.grade_id].points < cell.points]
    verdict = verdicts[forecast]
    if broken and verdict.points < next(c.points for c in GRADED_CELLS if c.grade_id == forecast):
        advice = (f"Fix {' and '.join(broken)} first (see above): a model trained with a broken training loop cannot "
                  "reach the bar.")
        verdicts[forecast] = Verdict(verdict.points, f"{verdict.message} {advice}".strip(), verdict.recorded, verdict.flag)
    return verdicts


def _verdict(cell, record, program, seed, results: dict, windows, thresholds: dict) -> Verdict:
    if isinstance(record, Verdict):
        return record
    if isinstance(program, Refused) and not record.failed():
        return Verdict(0.0, f"Your exported model cannot be graded: {program}.", True, f"export refused: {program}")
    try:
        if cell.check == "model":
            outcome = probes.judge_model(record, seed, program, results)
        elif cell.check == "forecast":
            outcome = probes.judge_forecast(record, seed, program, results, windows, thresholds)
        else:
            outcome = JUDGES[cell.check](record, seed)
    except CheckFailed as failure:
        return Verdict(0.0, str(failure), True, failure.flag)
    except Unusable as err:
        return Verdict(0.0, NOT_AS_MADE, True, f"record of {cell.check} not as the collector makes it: {err}")
    if isinstance(outcome, Partial):
        return Verdict(round(cell.points * outcome.fraction, 2), outcome.message, True, outcome.flag)
    return Verdict(float(cell.points), "", True)


def _with_kernel(verdict: Verdict, record, kernel: float | None) -> Verdict:
    """Flag a kernel whose own result contradicts the check's record: the hidden cell fails in the kernel exactly
    when its record says the student's code could not be checked."""
    if kernel is None:
        return verdict
    try:
        recorded_failure = not isinstance(record, Record) or record.failed()
    except Unusable:
        return verdict  # already judged unusable
    if (kernel > 0) == (not recorded_failure):
        return verdict
    what = "failed" if kernel == 0 else "passed"
    flag = (f"the kernel's own check {what} while its record says it "
            f"{'could not check the code' if recorded_failure else 'checked the code'}: a hook, thread or patch at "
            "work? The trusted verdict counts")
    return Verdict(verdict.points, verdict.message, verdict.recorded, "; ".join(filter(None, (verdict.flag, flag))))
