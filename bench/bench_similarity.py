"""Benchmark and calibration of the class similarity report (`jenalab.similarity`).

Three things, on notebooks built from corpus-format files as students would hand them in:

1. **Independent work**: the six solutions in ``bench/similarity/`` were written independently of
   each other and of the reference; with the reference they make 21 pairs. Their largest overlap (code
   and written answers) must stay below `THRESHOLD`.
2. **Edited copies**: each of the six is copied the way a student hides a copy: every local name
   renamed, comments rewritten, numbers changed, and the written answers' sentences reordered with one
   dropped. Each copy's overlap with its original must reach both thresholds, and the quick pre-filter must
   keep every such pair (its share of shared fingerprints is printed against `PREFILTER`).
3. **Speed**: a class of ``--class-size`` (default 500) built from the six by such edits, each base
   copied about 83 times, so that the class holds far more similar pairs than a real one; compared
   once with `similar_pairs` (the pre-filter, then copydetect on the pairs that pass) and, as the
   baseline in the same run, copydetect on every pair of the first ``--baseline-size`` students
   (default 100), whose time is extrapolated to the whole class by the number of pairs.

Exit status 1 when 1. or 2. fails (the threshold no longer separates the two kinds of work); timings
never fail the run.

    .venv/bin/python bench/bench_similarity.py [--class-size 500] [--baseline-size 100]
"""

from __future__ import annotations

import argparse
import ast
import io
import itertools
import random
import re
import sys
import tempfile
import time
import tokenize
from pathlib import Path

import nbformat

from jenalab.corpus import build_notebook, parse
from jenalab.similarity import (
    ANSWER_THRESHOLD,
    CODE_THRESHOLD,
    PREFILTER,
    Pair,
    Provided,
    Work,
    _fingerprint,
    similar_pairs,
    student_work,
)

REPO = Path(__file__).resolve().parent.parent
INDEPENDENT = sorted((REPO / "bench" / "similarity").glob("independent_*.py"))
REFERENCE = REPO / "grader_tests" / "submissions" / "reference.py"
SEED = 7


def works_of(paths: list[Path], folder: Path) -> list[Work]:
    """Each corpus-format file as the notebook a student hands in, and what similarity compares of it."""
    release = nbformat.read(REPO / "release" / "lstm_jena" / "lstm_jena.ipynb", as_version=4)
    works = []
    for path in paths:
        notebook_path = folder / f"{path.stem}.ipynb"
        nbformat.write(build_notebook(parse(path), REPO), notebook_path)
        works.append(student_work(path.stem, notebook_path, release))
    return works


def _rename(code: str, rng: random.Random) -> str:
    """Every name the code assigns (locals, loop targets, arguments but the contract's) renamed; comments rewritten;
    numbers nudged."""
    tree = ast.parse(code)
    keep = {"self", "model", "loader", "loss_fn", "optimizer", "epochs", "scheduler", "patience", "n_features",
            "hidden_size", "num_layers", "x", "MODE", "final_model", "final_history"}
    assigned = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    assigned |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments) for a in n.args}
    renames = {name: f"{name[:2]}_{rng.randrange(100)}v" for name in assigned - keep}
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.NAME and tok.string in renames:
            tok = tok._replace(string=renames[tok.string])
        elif tok.type == tokenize.COMMENT:
            tok = tok._replace(string=f"# note {rng.randrange(1000)}")
        elif tok.type == tokenize.NUMBER and "." in tok.string:
            tok = tok._replace(string=repr(round(float(tok.string) * rng.choice((0.5, 2.0)), 6)))
        out.append(tok)
    return tokenize.untokenize(out)


def _reword(text: str, rng: random.Random) -> str:
    """The answer's sentences shuffled, one dropped."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s]
    rng.shuffle(sentences)
    return " ".join(sentences[:-1] if len(sentences) > 2 else sentences)


def edited_copy(work: Work, student: str, rng: random.Random) -> Work:
    code = _rename(work.code, rng)
    answers = "\n\n".join(_reword(part, rng) for part in work.answers.split("\n\n"))
    return Work(student, code, answers)


def _share(first: Work, second: Work, provided: Provided) -> tuple[float, float, float]:
    """Code overlap, answers overlap, and how far the pair clears the pre-filter (>= 1: compared)."""
    found = similar_pairs([first, second], provided, 0.0, 0.0)
    pair = found[0] if found else Pair(first.student, second.student, 0.0, 0.0, [])  # too little code to compare
    margin = 0.0
    for kind, threshold in (("code", CODE_THRESHOLD), ("answers", ANSWER_THRESHOLD)):
        boilerplate = _fingerprint(getattr(provided, kind), kind).hashes
        one, two = (set(_fingerprint(getattr(w, kind), kind, boilerplate).hashes) for w in (first, second))
        margin = max(margin, len(one & two) / (min(len(one), len(two)) or 1) / (PREFILTER * threshold))
    return pair.code, pair.answers, margin


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--class-size", type=int, default=500)
    parser.add_argument("--baseline-size", type=int, default=100)
    args = parser.parse_args()
    rng = random.Random(SEED)
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        bases = works_of([*INDEPENDENT, REFERENCE], Path(tmp))
    provided = Provided.of(REPO)

    print(f"thresholds: {CODE_THRESHOLD} of either student's code, {ANSWER_THRESHOLD} of either's written answers\n")
    print("1. independent pairs (code, answers):")
    worst = (0.0, 0.0)
    for first, second in itertools.combinations(bases, 2):
        code, answers, _ = _share(first, second, provided)
        worst = (max(worst[0], code), max(worst[1], answers))
        print(f"   {first.student:>15} {second.student:>15}  {code:.2f}  {answers:.2f}")
    print(f"   largest: code {worst[0]:.2f}, answers {worst[1]:.2f}")
    failed |= worst[0] >= CODE_THRESHOLD or worst[1] >= ANSWER_THRESHOLD

    print("\n2. edited copies against their original (code, answers, pre-filter margin):")
    least = (1.0, 1.0, float("inf"))
    independent = bases[:-1]  # the reference's code is all boilerplate: a copy of it is the textbook solution
    for base in independent:
        copy = edited_copy(base, f"copy_of_{base.student}", rng)
        code, answers, margin = _share(base, copy, provided)
        least = (min(least[0], code), min(least[1], answers), min(least[2], margin))
        print(f"   {base.student:>15}  {code:.2f}  {answers:.2f}  {margin:.1f}x")
    print(f"   smallest: code {least[0]:.2f}, answers {least[1]:.2f}; pre-filter margin {least[2]:.1f}x (>= 1: compared)")
    failed |= least[0] < CODE_THRESHOLD or least[1] < ANSWER_THRESHOLD or least[2] < 1

    klass = [edited_copy(independent[i % len(independent)], f"s{i:04d}", rng) for i in range(args.class_size)]
    start = time.perf_counter()
    pairs = similar_pairs(klass, provided)
    seconds = time.perf_counter() - start
    from copydetect import compare_files

    sample = klass[:args.baseline_size]
    start = time.perf_counter()
    code_boilerplate = _fingerprint(provided.code, "code").hashes
    answer_boilerplate = _fingerprint(provided.answers, "answers").hashes
    prints = [(_fingerprint(w.code, "code", code_boilerplate), _fingerprint(w.answers, "answers", answer_boilerplate))
              for w in sample]
    for (c1, a1), (c2, a2) in itertools.combinations(prints, 2):
        compare_files(c1, c2)
        compare_files(a1, a2)
    baseline = (time.perf_counter() - start) * (args.class_size * (args.class_size - 1)) / (len(sample) * (len(sample) - 1))
    print(f"\n3. a class of {args.class_size} ({len(independent)} bases, edited copies): {len(pairs)} similar pairs listed")
    print(f"   similar_pairs:              {seconds:6.1f} s")
    print(f"   copydetect on every pair:   {baseline:6.1f} s (extrapolated from {len(sample)} students)")
    print(f"   ratio: {baseline / seconds:.1f}x faster than the baseline")
    print("\nOK" if not failed else "\nFAILED: the threshold does not separate independent work from edited copies")
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
