"""The instructor's solution, every cell as in the source notebook: full automatic score."""
# base: full
