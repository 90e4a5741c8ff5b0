"""The three layers and the one contract table, checked on the source.

jena_weather (student-facing, shipped with the release) <- grader_tests (hidden checks) <- jenalab
(instructor tools): imports point down only. grader_tests/contract.py is the only module that names
the graded cells and their points."""

import ast
from pathlib import Path

import pytest

from grader_tests.contract import GRADED_CELLS, WRITTEN_ANSWERS

COURSE = Path(__file__).resolve().parents[1]
LAYERS = {  # package: the project packages it may import
    "jena_weather": {"jena_weather"},
    "grader_tests": {"jena_weather", "grader_tests"},
    "jenalab": {"jena_weather", "grader_tests", "jenalab"},
}
FOLDERS = {"jena_weather": COURSE / "source" / "lstm_jena" / "jena_weather", "grader_tests": COURSE / "grader_tests",
           "jenalab": COURSE / "jenalab"}


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every import in a module, including imports inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(LAYERS)


@pytest.mark.parametrize("package", LAYERS)
def test_imports_point_down_only(package):
    offending = {path.name: imported_packages(path) - LAYERS[package]
                 for path in FOLDERS[package].glob("*.py") if imported_packages(path) - LAYERS[package]}
    assert not offending, f"{package} imports a layer above it: {offending}"


def test_the_student_facing_code_needs_nothing_but_the_standard_packages():
    allowed = {"numpy", "pandas", "torch", "tqdm", "jena_weather", "__future__"}
    import sys

    for path in FOLDERS["jena_weather"].glob("*.py"):
        tree = ast.parse(path.read_text())
        modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        modules |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
        third_party = {m for m in modules if m not in sys.stdlib_module_names}
        assert third_party <= allowed, f"{path.name} needs {third_party - allowed}"


def test_only_the_contract_names_the_cells_that_carry_points():
    names = [cell.grade_id for cell in GRADED_CELLS] + list(WRITTEN_ANSWERS)
    code = [p for folder in (*FOLDERS.values(), COURSE / "tests", COURSE / "bench") for p in folder.glob("*.py")
            if p.name != "contract.py"]
    for path in code:
        text = path.read_text()
        quoted = [name for name in names if f'"{name}"' in text or f"'{name}'" in text]
        assert not quoted, f"{path.relative_to(COURSE)} names {quoted}: use grader_tests.contract"


def test_no_import_cycles_inside_a_layer():
    """Within each package, modules import one another in one direction only (a cycle, even through an import inside
    a function, means two modules that cannot be read apart)."""
    for package, folder in FOLDERS.items():
        graph = {}
        for path in folder.glob("*.py"):
            names = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(f"{package}."):
                    names.add(node.module.split(".")[1])
                elif isinstance(node, ast.ImportFrom) and node.module == package:
                    names |= {alias.name for alias in node.names}
                elif isinstance(node, ast.Import):
                    names |= {a.name.split(".")[1] for a in node.names if a.name.startswith(f"{package}.")}
            graph[path.stem] = names & {p.stem for p in folder.glob("*.py")} - {path.stem}
        cycles = []

        def visit(module, trail):
            for target in sorted(graph[module]):
                if target in trail:
                    cycles.append(trail[trail.index(target):] + [target])
                elif target not in done:
                    visit(target, trail + [target])
            done.add(module)

        done: set[str] = set()
        for module in sorted(graph):
            if module not in done:
                visit(module, [module])
        assert not cycles, f"{package} has import cycles: {cycles}"
