"""Attack: an exploration cell prints every file it can find that is not the student's: solutions, other students'
notebooks, the gradebook, thresholds, the grader's code, the home folder. Feedback must show none of it."""
# flag: suspicious code: reads or writes files, or runs programs
# %% explore_data
import glob
import os

course = os.path.abspath("../../..")  # autograded/<student>/lstm_jena sits three folders below the course
found = ["/etc/shadow", "/root", os.path.expanduser("~"), f"{course}/source/lstm_jena/lstm_jena.ipynb",
         f"{course}/gradebook.db", f"{course}/grader_tests/thresholds.json", f"{course}/submitted"]
for top in (course, "/grading", "/tmp", "/root", "/home", "/srv", "/opt", "/work"):
    for pattern in ("*.ipynb", "*.db", "*.json", "*.py"):
        found += glob.glob(f"{top}/**/{pattern}", recursive=True)[:40]
for path in found[:300]:
    try:
        print(path, os.listdir(path) if os.path.isdir(path) else open(path, errors="replace").read()[:4_000])
    except OSError as err:
        print(path, "->", err)
