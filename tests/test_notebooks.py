"""The teaching notebooks in notebooks/: each runs top to bottom in fast mode (HDETACH_FAST=1),
its student copy (solutions stripped) fails every exercise check, and the committed file carries
the outputs of a full run.

Each notebook is executed in a fresh kernel of this Python (nbclient + ipykernel, from the `test`
extra), with a time limit per cell.
"""

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import hdetach_np as hd
from hdetach_np.teaching import notebooks as nt

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 300  # seconds per cell; fast mode needs a few
MAX_NOTEBOOK_BYTES = 1_000_000
MAX_TEXT_OUTPUT = 5_000  # characters of text per cell output: no long logs

ids = [p.stem for p in NOTEBOOKS]


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def errors(cell):
    return [o for o in cell.get("outputs", []) if o["output_type"] == "error"]


def stream_text(cell):
    return "".join("".join(o.get("text", "")) for o in cell.get("outputs", []) if o["output_type"] == "stream")


def test_the_first_notebook_is_present():
    assert "01_lstm_forward_backward" in ids


# ---------------------------------------------------------------------------------------------
# Structure of the committed files (no kernel needed)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_has_a_fast_mode_parameters_cell(path):
    nb = nt.read_notebook(path)
    params = [c for c in code_cells(nb) if nt.PARAMETERS_TAG in nt.cell_tags(c)]
    assert len(params) == 1, "expected exactly one code cell tagged 'parameters'"
    assert "FAST = fast_mode()" in nt.cell_source(params[0])
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_every_exercise_has_a_check_cell(path):
    nb = nt.read_notebook(path)
    pending = None
    for k, cell in enumerate(nb["cells"]):
        tags = nt.cell_tags(cell)
        if nt.SOLUTION_TAG in tags:
            assert pending is None, f"solution cell {pending} has no check cell before the next exercise"
            assert cell["cell_type"] == "code"
            pending = k
        elif nt.CHECK_TAG in tags:
            assert pending is not None, f"check cell {k} follows no solution cell"
            assert "exercises.check_" in nt.cell_source(cell), "a check cell calls a check from hdetach_np.teaching.exercises"
            pending = None
    assert pending is None, f"solution cell {pending} has no check cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_committed_notebook_has_outputs_of_a_full_run(path):
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES
    nb = nt.read_notebook(path)
    counts = [c["execution_count"] for c in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), "run every cell once, top to bottom, then save"
    for k, cell in enumerate(code_cells(nb)):
        assert not errors(cell), f"code cell {k} was saved with an error"
        assert "execution" not in cell["metadata"], "save without timing metadata (nbclient record_timing=False)"
        for out in cell["outputs"]:
            data = out.get("data", {})
            assert not set(data) & {"image/svg+xml", "text/html", "application/javascript"}, set(data)
            text = "".join(out.get("text", "")) + "".join(data.get("text/plain", ""))
            assert len(text) < MAX_TEXT_OUTPUT, f"code cell {k} has a long text output"
    all_text = "".join(stream_text(c) for c in code_cells(nb))
    assert "FAST=False" in all_text, "commit the outputs of a full run, not of fast mode"
    for cell in code_cells(nb):
        if nt.CHECK_TAG in nt.cell_tags(cell):
            assert "Correct!" in stream_text(cell)


def _package_public_names():
    names = set(hd.__all__)
    for mod in pkgutil.walk_packages(hd.__path__, prefix="hdetach_np."):
        if mod.name.endswith("__main__"):
            continue
        module = importlib.import_module(mod.name)
        names |= {n for n, v in vars(module).items()
                  if not n.startswith("_") and getattr(v, "__module__", None) == mod.name}
    return names


def _without_magic(line: str) -> str:
    """An IPython magic line (`%pip ...`) as `pass` at its indent, so the cell parses as Python."""
    stripped = line.lstrip()
    return line[:len(line) - len(stripped)] + "pass" if stripped.startswith("%") else line


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_does_not_redefine_package_code(path):
    package_names = _package_public_names()
    assert {"lstm_step_backward", "check_forget_gate_grad", "fast_mode"} <= package_names
    nb = nt.read_notebook(path)
    for k, cell in enumerate(code_cells(nb)):
        src = "\n".join(_without_magic(line) for line in nt.cell_source(cell).splitlines())
        defined = {node.name for node in ast.walk(ast.parse(src))
                   if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        assert not defined & package_names, f"code cell {k} redefines {defined & package_names}"


# ---------------------------------------------------------------------------------------------
# Execution (one kernel per test)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_runs_in_fast_mode(path):
    executed = nt.execute_notebook(nt.read_notebook(path), cwd=NOTEBOOK_DIR, fast=True, timeout=CELL_TIMEOUT)
    cells = code_cells(executed)
    assert all(not errors(c) for c in cells)
    assert all(c["execution_count"] is not None for c in cells if nt.cell_source(c).strip())
    checks = [c for c in cells if nt.CHECK_TAG in nt.cell_tags(c)]
    assert all("Correct!" in stream_text(c) for c in checks)
    assert "FAST=True" in "".join(stream_text(c) for c in cells), "the notebook should report its fast mode"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_student_copy_fails_every_check(path):
    student = nt.strip_solutions(nt.read_notebook(path), name=path.name)
    for cell in student["cells"]:
        assert nt.SOLUTION_TAG not in nt.cell_tags(cell)
        assert nt.BEGIN_SOLUTION not in nt.cell_source(cell)
    exercises = [c for c in code_cells(student) if nt.EXERCISE_TAG in nt.cell_tags(c)]
    checks = [c for c in code_cells(student) if nt.CHECK_TAG in nt.cell_tags(c)]
    if not checks:
        pytest.skip(f"{path.name} has no exercises")
    assert all(nt.CODE_STUB in nt.cell_source(c) for c in exercises)

    executed = nt.execute_notebook(student, cwd=NOTEBOOK_DIR, fast=True, timeout=CELL_TIMEOUT, allow_errors=True)
    for k, cell in enumerate(code_cells(executed)):
        tags = nt.cell_tags(cell)
        errs = errors(cell)
        if nt.CHECK_TAG in tags:
            assert errs, f"check cell {k} passed without the solution"
            assert errs[0]["ename"] in ("ExerciseError", "NameError"), errs[0]["ename"]
            assert "Correct!" not in stream_text(cell)
        elif nt.EXERCISE_TAG in tags:
            assert not errs or errs[0]["ename"] == "NotImplementedError", errs[0]["ename"]
        else:
            assert not errs, f"code cell {k} of the student copy fails: {errs[0]['ename']}: {errs[0]['evalue']}"
