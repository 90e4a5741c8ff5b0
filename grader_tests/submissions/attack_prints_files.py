"""Attack: an exploration cell prints every file it can find that is not the student's: solutions, other students'
notebooks, the gradebook, thresholds, the grader's code, the home folder. Feedback must show none of it."""
# flag: suspicious code: reads files or runs programs
# %% explore_data
import glob
import os

found = ["/etc/passwd", "/etc/shadow", "/root", os.path.expanduser("~"), "../../../source/lstm_jena/lstm_jena.ipynb",
         "../../../gradebook.db", "../../../grader_tests/thresholds.json", "../../other_student/lstm_jena/lstm_jena.ipynb"]
for top in ("/grading", "/tmp", "/work", "/root", "/home", "/srv", "/opt", os.path.abspath("../../..")):
    found += glob.glob(f"{top}/**/*.ipynb", recursive=True) + glob.glob(f"{top}/**/*.py", recursive=True)
    found += glob.glob(f"{top}/**/*.db", recursive=True) + glob.glob(f"{top}/**/*.json", recursive=True)
for path in found[:60]:
    try:
        print(path, os.listdir(path) if os.path.isdir(path) else open(path, errors="replace").read()[:20_000])
    except OSError as err:
        print(path, "->", err)
