"""Harmful: an exploration cell displays a 40 MB image. The launcher replaces it by a note before the grader sees it;
the grade is not affected and the grading process holds no more memory than for any notebook."""
# reason: all automatic checks passed
# %% explore_data
import base64
import os

from IPython.display import display

display({"image/png": base64.b64encode(b"\x89PNG\r\n\x1a\n" + os.urandom(40 * 2**20)).decode()}, raw=True)
print("after the image")
