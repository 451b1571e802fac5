"""The house rules a reader relies on: imports flow one way, files stay small, notebook cells stay short."""
import ast

import nbformat
import pytest

from mnist_utils.config import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "mnist_utils"
SOURCES = sorted([*PACKAGE.glob("*.py"), PROJECT_ROOT / "models.py", PROJECT_ROOT / "utils.py",
                  *(PROJECT_ROOT / "tests").glob("*.py")])
NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def imported_modules(path):
    """Top-level names of the modules `path` imports; a package-relative import as 'mnist_utils.<name>'."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from .engine import ..., from . import engine
                found |= {f"mnist_utils.{node.module}"} if node.module else {
                    f"mnist_utils.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
    return found


def test_no_mnist_utils_module_imports_the_notebooks_face():
    offenders = [p.name for p in PACKAGE.glob("*.py") if "utils" in imported_modules(p)]
    assert not offenders, f"utils.py is the notebooks' face; these import it: {offenders}"


def test_models_py_imports_nothing_of_the_project():
    project = {"utils", "mnist_utils"}
    assert not {m.split(".")[0] for m in imported_modules(PROJECT_ROOT / "models.py")} & project


def test_mnist_utils_modules_import_each_other_without_a_circle():
    graph = {p.stem: {m.split(".", 1)[1] for m in imported_modules(p) if m.startswith("mnist_utils.")}
             for p in PACKAGE.glob("*.py")}
    done, path = set(), []

    def visit(module):
        if module in path:
            pytest.fail("import circle: " + " → ".join(path[path.index(module):] + [module]))
        if module in done:
            return
        path.append(module)
        for other in graph.get(module, ()):
            visit(other)
        path.pop()
        done.add(module)

    for module in graph:
        visit(module)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_source_files_stay_readable(path):
    limit = 400 if path.name == "utils.py" else 500
    lines = len(path.read_text().splitlines())
    assert lines <= limit, f"{path.name} has {lines} lines (at most {limit}): split it by concern"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_code_cells_are_short(path):
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type == "code":
            lines = len(cell.source.splitlines())
            assert lines <= 25, f"{path.name}, cell {index}: {lines} lines (at most 25): move logic into a helper"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_define_no_helpers(path):
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code":
            tree = ast.parse(cell.source)
            defined = [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
            assert not defined, f"{path.name} defines {defined}: helpers belong in mnist_utils (via utils.py)"


MEASURES = {"record", "add_run", "forget", "add_model", "publish_table"}  # Report._measuring's, and save_and_record
CHECKS = {"check", "show_analysis"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_measure_before_they_check(path):
    """A measurement after a check takes the checks and the Analysis away (it comes from a cell above them run
    again in Jupyter): a notebook that measured after its first check would lose that check in every run."""
    calls = []  # (cell, name) of every report call that measures or checks, in order
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type == "code":
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, ast.Call):
                    func = node.func
                    on_report = isinstance(func, ast.Attribute) and getattr(func.value, "id", None) == "report"
                    name = func.attr if on_report else getattr(func, "id", None)
                    if (on_report and name in MEASURES | CHECKS) or name == "save_and_record":
                        calls.append((index, node.lineno, node.col_offset, name))
    calls = [(cell, name) for cell, *_, name in sorted(calls)]  # in the order they run
    first_check = next((i for i, (_, name) in enumerate(calls) if name in CHECKS), len(calls))
    late = [(cell, name) for cell, name in calls[first_check:] if name not in CHECKS]
    assert calls[first_check:], f"{path.name} never checks a claim"
    assert not late, f"{path.name} measures after its first check (cell {calls[first_check][0]}): {late}; move them up"
