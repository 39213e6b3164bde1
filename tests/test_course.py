"""The notebooks as a course: nbgrader metadata and launch cells on the committed notebooks, the
functions that write them, and a real nbgrader run (generate_assignment, then autograde a solved
and an unsolved submission) on a temporary course folder.

The nbgrader run needs the `course` extra (nbgrader; part of the `test` extra) and is skipped, with
the reason, without it. Notebooks run in fast mode (HDETACH_FAST=1) during autograde.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hdetach_np.teaching import course
from hdetach_np.teaching import notebooks as nt

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ids = [p.stem for p in NOTEBOOKS]


def setup_cfg_url() -> str:
    return course.repository_url(ROOT / "setup.cfg")


# ---------------------------------------------------------------------------------------------
# The committed notebooks
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_committed_notebook_carries_its_nbgrader_metadata(path):
    nb = nt.read_notebook(path)
    expected = course.add_nbgrader_metadata(copy.deepcopy(nb), name=path.name)
    assert nb == expected, (f"{path.name}: run `hdetach-np notebooks nbgrader-metadata {path.relative_to(ROOT)}` "
                            "after editing its exercises")
    graded = course.nbgrader_ids(nb)
    solutions = [c for c in nb["cells"] if nt.SOLUTION_TAG in nt.cell_tags(c)]
    checks = [c for c in nb["cells"] if nt.CHECK_TAG in nt.cell_tags(c)]
    assert len(graded) == len(solutions) + len(checks) > 0
    assert len({gid for gid, _ in graded}) == len(graded), "grade ids are unique in a notebook"
    for cell in checks:
        meta = cell["metadata"]["nbgrader"]
        assert meta["grade"] and meta["locked"] and not meta["solution"] and meta["points"] > 0
    for cell in solutions:
        meta = cell["metadata"]["nbgrader"]
        assert meta["solution"] and not meta["grade"] and not meta["locked"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_committed_notebook_opens_with_launch_links_and_install_lines(path):
    nb = nt.read_notebook(path)
    first = nb["cells"][0]
    assert first["cell_type"] == "markdown" and course.LAUNCH_TAG in nt.cell_tags(first)
    url = setup_cfg_url()
    assert nt.cell_source(first) == course.launch_links(path.name, url)
    assert f"colab.research.google.com/github/{url.split('github.com/')[1]}/blob/main/notebooks/{path.name}" \
        in nt.cell_source(first)
    first_code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert nt.cell_source(first_code).startswith(course.install_lines(url))


# ---------------------------------------------------------------------------------------------
# The functions, on a small notebook
# ---------------------------------------------------------------------------------------------


def _cell(kind, src, tags=()):
    cell = {"cell_type": kind, "id": f"x{abs(hash(src)) % 10**8}", "metadata": {"tags": list(tags)} if tags else {},
            "source": src}
    if kind == "code":
        cell.update(outputs=[], execution_count=None)
    return cell


def small_nb():
    return {"cells": [_cell("markdown", "# Title"), _cell("code", "import numpy as np"),
                      _cell("code", "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n",
                            ["solution"]),
                      _cell("code", "exercises.check_double(f)", ["check"]),
                      _cell("code", "print('after')")],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def test_add_nbgrader_metadata_marks_solution_and_check_and_is_idempotent():
    nb = course.add_nbgrader_metadata(small_nb())
    assert course.nbgrader_ids(nb) == [("double-solution", "solution"), ("double-check", "check")]
    assert nb["cells"][3]["metadata"]["nbgrader"]["points"] == 1
    assert "nbgrader" not in nb["cells"][1]["metadata"]
    nb["cells"][3]["metadata"]["nbgrader"]["checksum"] = "abc"  # kept: nbgrader's own entries
    again = course.add_nbgrader_metadata(copy.deepcopy(nb))
    assert again == nb


@pytest.mark.parametrize("change, message", [
    (lambda nb: nb["cells"].pop(3), "without a check cell"),
    (lambda nb: nb["cells"].pop(2), "follows no solution cell"),
    (lambda nb: nb["cells"][3].update(source="print(1)"), "should call exercises.check_NAME"),
    (lambda nb: nb["cells"].extend(copy.deepcopy(nb["cells"][2:4])), "grade ids must be unique"),
])
def test_add_nbgrader_metadata_rejects_a_broken_layout(change, message):
    nb = small_nb()
    change(nb)
    with pytest.raises(ValueError, match=message):
        course.add_nbgrader_metadata(nb, name="x.ipynb")


def test_add_launch_cells_is_idempotent_and_follows_the_url():
    nb = course.add_launch_cells(small_nb(), "x.ipynb", "https://github.com/me/proj")
    assert nt.cell_tags(nb["cells"][0]) == [course.LAUNCH_TAG]
    links = nt.cell_source(nb["cells"][0])
    assert "https://colab.research.google.com/github/me/proj/blob/main/notebooks/x.ipynb" in links
    assert "mybinder.org/v2/gh/me/proj/main?labpath=notebooks%2Fx.ipynb" in nt.cell_source(nb["cells"][0])
    assert nt.cell_source(nb["cells"][2]).endswith("\nimport numpy as np")
    assert 'git+https://github.com/me/proj"' in nt.cell_source(nb["cells"][2])
    assert course.add_launch_cells(copy.deepcopy(nb), "x.ipynb", "https://github.com/me/proj") == nb
    other = course.add_launch_cells(copy.deepcopy(nb), "x.ipynb", "https://github.com/you/proj")
    assert len(other["cells"]) == len(nb["cells"])
    assert nt.cell_source(other["cells"][2]).count("try:") == 1 and "you/proj" in nt.cell_source(other["cells"][2])
    with pytest.raises(ValueError, match="https://github.com/OWNER/NAME"):
        course.launch_links("x.ipynb", "https://example.org/me/proj")


def test_cli_nbgrader_metadata_updates_in_place_and_refuses_a_broken_notebook(tmp_path):
    from hdetach_np.cli import main

    good, bad = tmp_path / "good.ipynb", tmp_path / "bad.ipynb"
    nt.write_notebook(small_nb(), good)
    broken = small_nb()
    broken["cells"].pop(3)
    nt.write_notebook(broken, bad)
    before = bad.read_text()
    assert main(["notebooks", "nbgrader-metadata", str(good), str(bad)]) == 2
    assert bad.read_text() == before and "nbgrader" not in good.read_text(), "nothing written on error"
    assert main(["notebooks", "nbgrader-metadata", str(good)]) == 0
    assert course.nbgrader_ids(nt.read_notebook(good))[0] == ("double-solution", "solution")


# ---------------------------------------------------------------------------------------------
# The real nbgrader
# ---------------------------------------------------------------------------------------------

ASSIGNMENT = "hdetach"
# Autograded submissions (each notebook runs once per submission): one notebook whose answers are
# function bodies and one whose answers are top-level statements. The student versions of all five
# are generated and checked, and every notebook's metadata is checked above.
AUTOGRADED = ("01_lstm_forward_backward", "03_suppression")
NBGRADER_CONFIG = """c = get_config()
c.CourseDirectory.course_id = "hdetach-np"
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = "sqlite:///" + {db!r}
c.Execute.timeout = 300
c.Execute.allow_errors = True
"""


def _nbgrader(args, course_dir, env):
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _isolated_jupyter_env(tmp_path) -> dict:
    """Jupyter folders in tmp_path, a `python3` kernel running this Python, this checkout first on
    PYTHONPATH, and fast mode: nothing of the user's Jupyter set-up is read or written."""
    jupyter = tmp_path / "jupyter"
    kernel = jupyter / "data" / "kernels" / "python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)", "language": "python"}), encoding="utf-8")
    env = dict(os.environ)
    env.update(JUPYTER_PATH=str(jupyter / "data"), JUPYTER_DATA_DIR=str(jupyter / "data"),
               JUPYTER_CONFIG_DIR=str(jupyter / "config"), JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
               IPYTHONDIR=str(jupyter / "ipython"), HDETACH_FAST="1",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    env.pop("MPLBACKEND", None)
    return env


def test_nbgrader_generates_student_versions_and_autogrades_them(tmp_path):
    pytest.importorskip("nbgrader", reason="nbgrader is not installed: pip install -e \".[course]\"")
    from nbgrader.api import Gradebook

    course_dir = tmp_path / "course"
    source = course_dir / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    for path in NOTEBOOKS:
        shutil.copy(path, source / path.name)
    db = tmp_path / "gradebook.db"
    (course_dir / "nbgrader_config.py").write_text(NBGRADER_CONFIG.format(root=str(course_dir), db=str(db)),
                                                   encoding="utf-8")
    env = _isolated_jupyter_env(tmp_path)

    _nbgrader(["generate_assignment", ASSIGNMENT, "--force"], course_dir, env)
    release = course_dir / "release" / ASSIGNMENT
    for path in NOTEBOOKS:  # the student versions hold no solution
        student = nt.read_notebook(release / path.name)
        text = json.dumps(student)
        assert nt.BEGIN_SOLUTION not in text and nt.END_SOLUTION not in text
        instructor = {gid: nt.cell_source(c) for c in nt.read_notebook(path)["cells"]
                      for gid in [c["metadata"].get("nbgrader", {}).get("grade_id")] if gid}
        solution_cells = [c for c in student["cells"] if c["metadata"].get("nbgrader", {}).get("solution")]
        assert solution_cells
        for cell in solution_cells:
            assert "raise NotImplementedError" in nt.cell_source(cell)
            assert nt.cell_source(cell) != instructor[cell["metadata"]["nbgrader"]["grade_id"]]

    # two submissions: "solved" puts the instructor's answers back into the student version,
    # "unsolved" hands the student version in as released
    graded = [p for p in NOTEBOOKS if p.stem in AUTOGRADED]
    assert len(graded) == len(AUTOGRADED)
    for student_id in ("solved", "unsolved"):
        folder = course_dir / "submitted" / student_id / ASSIGNMENT
        folder.mkdir(parents=True)
        for path in graded:
            nb = nt.read_notebook(release / path.name)
            if student_id == "solved":
                answers = {c["metadata"]["nbgrader"]["grade_id"]: nt.cell_source(c)
                           for c in nt.read_notebook(path)["cells"]
                           if c["metadata"].get("nbgrader", {}).get("solution")}
                for cell in nb["cells"]:
                    meta = cell["metadata"].get("nbgrader", {})
                    if meta.get("solution"):
                        cell["source"] = answers[meta["grade_id"]]
            nt.write_notebook(nb, folder / path.name)
        _nbgrader(["db", "student", "add", student_id], course_dir, env)

    _nbgrader(["autograde", ASSIGNMENT, "--force"], course_dir, env)

    with Gradebook(f"sqlite:///{db}") as gb:
        for path in graded:
            solved = gb.find_submission_notebook(path.stem, ASSIGNMENT, "solved")
            unsolved = gb.find_submission_notebook(path.stem, ASSIGNMENT, "unsolved")
            points = sum(c["metadata"]["nbgrader"].get("points", 0) for c in nt.read_notebook(path)["cells"]
                         if c["metadata"].get("nbgrader", {}).get("grade"))
            assert solved.max_score == unsolved.max_score == points > 0
            assert solved.score == points, f"{path.name}: the solved notebook scored {solved.score} of {points}"
            assert unsolved.score == 0, f"{path.name}: the unsolved notebook scored {unsolved.score}"
