"""Tools for the teaching notebooks in `notebooks/`: fast mode, student copies, execution.

    python -m hdetach_np.teaching.notebook_actions strip notebooks/ --out student/   # copies without solutions
    python -m hdetach_np.teaching.notebook_actions run notebooks/                   # execute, save the outputs IN PLACE
    python -m hdetach_np.teaching.notebook_actions run notebooks/ --out executed/   # ... or into another folder
    python -m hdetach_np.teaching.notebook_actions run notebooks/ --fast            # the same with HDETACH_FAST=1

(also available as `hdetach-np notebooks strip ...` and `hdetach-np notebooks run ...`; the course
actions `nbgrader-metadata` and `launch-links` are described in `hdetach_np.teaching.course`).

Conventions every notebook follows:
- A code cell tagged `parameters` (papermill style) sets `FAST = fast_mode()`; the next cell derives
  every size from FAST and prints `FAST=...`, so `HDETACH_FAST=1` (or papermill `-p FAST True`)
  shrinks every run.
- An exercise is a code cell tagged `solution`. Inside it the answer sits between the lines
  `### BEGIN SOLUTION` and `### END SOLUTION`; `strip` replaces those lines (or the whole cell when
  there are no markers) with `raise NotImplementedError("your code here")` and keeps everything
  else, e.g. the `def` line and docstring the student completes. A Markdown cell tagged `solution`
  becomes "_Your answer here._".
- The cell that checks an exercise is tagged `check`: it calls a function of the notebook's module
  in `hdetach_np.teaching.exercises` (imported as `exercises`, e.g.
  `exercises.check_forget_gate_grad(forget_gate_grad)`), which prints "Correct! ..." or raises
  `ExerciseError` with a hint.
- Notebooks are committed with the outputs of a full run: `python -m hdetach_np.teaching.notebook_actions run
  notebooks/`. tests/test_notebooks.py runs each one in fast mode and checks its student copy.

Stripping and fast mode use only the standard library; `run` needs nbclient and ipykernel
(`pip install -e ".[notebooks]"`).
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
import tempfile
from pathlib import Path

from .._atomic import atomic_write_text

FAST_ENV = "HDETACH_FAST"
SOLUTION_TAG = "solution"
EXERCISE_TAG = "exercise"  # what a `solution` cell is tagged after stripping
CHECK_TAG = "check"
PARAMETERS_TAG = "parameters"
BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
CODE_STUB = 'raise NotImplementedError("your code here")'
MARKDOWN_STUB = "_Your answer here._"
KERNEL_NAME = "hdetach-np-python"

_MARKER = re.compile(r"^([ \t]*)(### BEGIN SOLUTION|### END SOLUTION)[ \t]*$")


# ---------------------------------------------------------------------------------------------
# Fast mode
# ---------------------------------------------------------------------------------------------


def fast_mode(environ=None) -> bool:
    """True when the environment variable HDETACH_FAST is "1" (shrink every run), False when it is
    unset, empty or "0". Any other value is an error, so a typo cannot silently run the full size."""
    env = os.environ if environ is None else environ
    value = env.get(FAST_ENV, "").strip()
    if value in ("", "0"):
        return False
    if value == "1":
        return True
    raise ValueError(f'{FAST_ENV} must be "1" (fast) or "0"/unset (full), got {value!r}')


# ---------------------------------------------------------------------------------------------
# Reading and writing notebooks (plain JSON, nbformat 4 layout)
# ---------------------------------------------------------------------------------------------


def read_notebook(path) -> dict:
    """Load an .ipynb file as a dict; checks that it is an nbformat 4 notebook."""
    path = Path(path)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not a valid notebook (JSON error: {err})") from err
    if not isinstance(nb, dict) or nb.get("nbformat") != 4 or not isinstance(nb.get("cells"), list):
        raise ValueError(f"{path} is not an nbformat 4 notebook (expected a 'cells' list and nbformat 4)")
    return nb


def write_notebook(nb: dict, path) -> None:
    """Write `nb` the way Jupyter does (indent 1, sorted keys, sources as lists of lines)."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        cell["source"] = _as_lines(cell_source(cell))
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False, separators=(",", ": "))
    atomic_write_text(path, text + "\n")  # a notebook is never left half-written


def cell_source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def cell_tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _as_lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


# ---------------------------------------------------------------------------------------------
# Student copies
# ---------------------------------------------------------------------------------------------


def strip_solutions(nb: dict, keep_outputs: bool = False, name: str = "notebook") -> dict:
    """A student copy of `nb` (a new dict; `nb` is not modified).

    Every `solution` cell loses its answer (see the module docstring), its outputs and its
    `solution` tag (it is tagged `exercise` instead, so stripping twice changes nothing more).
    Outputs of the other cells are cleared too unless `keep_outputs`, since they can give answers
    away. Raises ValueError if solution markers are unbalanced or appear in an untagged cell.
    """
    out = copy.deepcopy(nb)
    for k, cell in enumerate(out["cells"]):
        where = f"{name}, cell {k}"
        tags = cell_tags(cell)
        src = cell_source(cell)
        is_solution = SOLUTION_TAG in tags
        if not is_solution:
            if any(_MARKER.match(line) for line in src.splitlines()):
                raise ValueError(
                    f"{where} contains '{BEGIN_SOLUTION}' markers but is not tagged "
                    f"'{SOLUTION_TAG}'; tag it so the answer is removed from student copies"
                )
            if cell["cell_type"] == "code" and not keep_outputs:
                _clear_outputs(cell)
            continue
        if cell["cell_type"] == "code":
            cell["source"] = _as_lines(_stub_code(src, where))
            _clear_outputs(cell)
        elif cell["cell_type"] == "markdown":
            cell["source"] = _as_lines(MARKDOWN_STUB)
            cell.pop("attachments", None)
        else:
            raise ValueError(f"{where} is a {cell['cell_type']} cell tagged '{SOLUTION_TAG}'; "
                             "expected a code or markdown cell")
        cell["metadata"]["tags"] = [t for t in tags if t != SOLUTION_TAG] + [EXERCISE_TAG]
    return out


def _clear_outputs(cell: dict) -> None:
    cell["outputs"] = []
    cell["execution_count"] = None
    cell.get("metadata", {}).pop("execution", None)


def _stub_code(src: str, where: str) -> str:
    """Replace each BEGIN/END SOLUTION block by a NotImplementedError at the marker's indent."""
    lines = src.splitlines()
    if not any(_MARKER.match(line) for line in lines):
        return f"# your code here\n{CODE_STUB}\n"
    out, inside = [], False
    for n, line in enumerate(lines, 1):
        m = _MARKER.match(line)
        if m is None:
            if not inside:
                out.append(line)
            continue
        indent, marker = m.groups()
        if marker == BEGIN_SOLUTION:
            if inside:
                raise ValueError(f"{where}, line {n}: '{BEGIN_SOLUTION}' inside another solution block")
            inside = True
            out.append(f"{indent}{CODE_STUB}")
        else:
            if not inside:
                raise ValueError(f"{where}, line {n}: '{END_SOLUTION}' without a '{BEGIN_SOLUTION}'")
            inside = False
    if inside:
        raise ValueError(f"{where}: '{BEGIN_SOLUTION}' is never closed by '{END_SOLUTION}'")
    return "\n".join(out) + "\n"


def notebook_paths(src) -> list[Path]:
    """`src` itself if it is an .ipynb file, else the .ipynb files directly inside the folder, sorted."""
    src = Path(src)
    if src.is_file():
        if src.suffix != ".ipynb":
            raise ValueError(f"expected an .ipynb file or a folder of them, got {src}")
        return [src]
    if not src.is_dir():
        raise FileNotFoundError(f"no such notebook or folder: {src}")
    paths = sorted(p for p in src.glob("*.ipynb") if p.is_file())
    if not paths:
        raise ValueError(f"no .ipynb files in {src}")
    return paths


def _check_out(paths: list[Path], out: Path, force: bool, what: str) -> None:
    """Refuse an `out` that is a file, the notebooks' own folder, or that holds a same-named notebook."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a folder, got the file {out}")
    if any(p.parent.resolve() == out.resolve() for p in paths):
        raise ValueError(f"--out {out} is where the notebooks are; choose another folder so the "
                         f"{what} are not overwritten")
    existing = [out / p.name for p in paths if (out / p.name).exists()]
    if existing and not force:
        names = ", ".join(str(e) for e in existing)
        raise ValueError(f"{names} already exist(s) and may hold work; choose another --out folder, "
                         "or pass --force to replace them")


def strip_notebooks(src, out, keep_outputs: bool = False, force: bool = False) -> list[Path]:
    """Write a student copy of each notebook in `src` (a file or folder) into the folder `out`.

    Returns the paths written. Refuses to write into the folder the notebooks come from, and to
    replace a notebook already in `out` (a student's work, perhaps) unless `force`.
    """
    paths = notebook_paths(src)
    out = Path(out)
    _check_out(paths, out, force, "solutions")
    stripped = [(p, strip_solutions(read_notebook(p), keep_outputs, name=p.name)) for p in paths]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for p, nb in stripped:
        write_notebook(nb, out / p.name)
        written.append(out / p.name)
    return written


# ---------------------------------------------------------------------------------------------
# Executing notebooks (needs nbclient and ipykernel)
# ---------------------------------------------------------------------------------------------


def execute_notebook(nb: dict, cwd, fast: bool, timeout: float = 600, allow_errors: bool = False) -> dict:
    """Run every cell of `nb` in a fresh kernel of the running Python and return the executed copy.

    The kernel runs `sys.executable` (through a temporary kernelspec, so no user configuration is
    touched), with HDETACH_FAST set from `fast`, the folder holding this `hdetach_np` first on
    PYTHONPATH, and `cwd` as working directory. `timeout` is per cell, in seconds. Unless
    `allow_errors`, a failing cell raises nbclient's CellExecutionError.
    """
    try:
        import nbformat
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager
        from nbclient import NotebookClient
    except ImportError as err:
        raise ImportError(
            f"executing notebooks needs nbclient, nbformat and ipykernel ({err}); "
            'install them with pip install -e ".[notebooks]"'
        ) from err

    env = dict(os.environ)
    env[FAST_ENV] = "1" if fast else "0"
    env.pop("MPLBACKEND", None)  # let the kernel use its inline backend so figures are saved
    package_root = str(Path(__file__).resolve().parents[2])  # the folder that holds hdetach_np/
    env["PYTHONPATH"] = os.pathsep.join([package_root] + [p for p in [env.get("PYTHONPATH")] if p])
    node = nbformat.reads(json.dumps(nb), as_version=4)
    kernelspec = node.metadata.get("kernelspec")
    with tempfile.TemporaryDirectory() as tmp:
        kdir = Path(tmp) / KERNEL_NAME
        kdir.mkdir()
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
        }
        (kdir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
        km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=KernelSpecManager(kernel_dirs=[tmp]))
        client = NotebookClient(node, km=km, timeout=timeout, allow_errors=allow_errors, kernel_name=KERNEL_NAME,
                                record_timing=False, resources={"metadata": {"path": str(cwd)}})
        try:
            client.execute(env=env, cwd=str(cwd))
        finally:
            if km.has_kernel:
                km.shutdown_kernel(now=True)
    executed = json.loads(nbformat.writes(node))
    if kernelspec is not None:  # keep the notebook's own kernel, not the temporary one
        executed["metadata"]["kernelspec"] = kernelspec
    return executed


def run_notebooks(src, fast: bool = False, timeout: float = 600, out=None, force: bool = False) -> list[Path]:
    """Execute each notebook in `src` (file or folder) in its own folder and save it with outputs.

    out=None REWRITES each notebook in place (its cells stay, its outputs are replaced); with a
    folder `out`, the executed copies go there and the sources are not touched (a notebook
    already in `out` is replaced only if `force`). Returns the paths written.
    """
    paths = notebook_paths(src)
    if out is not None:
        out = Path(out)
        _check_out(paths, out, force, "sources")
        out.mkdir(parents=True, exist_ok=True)
    written = []
    for p in paths:
        nb = execute_notebook(read_notebook(p), cwd=p.parent, fast=fast, timeout=timeout)
        dest = p if out is None else out / p.name
        write_notebook(nb, dest)
        written.append(dest)
    return written
