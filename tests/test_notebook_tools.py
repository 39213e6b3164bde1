"""Student copies (`strip`), fast mode and the notebook command line, on small synthetic notebooks."""

import json
import subprocess
import sys

import pytest

from hdetach_np.cli import main as cli_main
from hdetach_np.teaching import notebooks as nt


def make_nb(cells):
    return {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                        "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def code(src, tags=(), outputs=None, count=1):
    meta = {"tags": list(tags)} if tags else {}
    return {"cell_type": "code", "id": f"c{abs(hash(src)) % 10**8}", "metadata": meta, "source": src,
            "execution_count": count,
            "outputs": outputs if outputs is not None
            else [{"output_type": "stream", "name": "stdout", "text": "out\n"}]}


def markdown(src, tags=()):
    meta = {"tags": list(tags)} if tags else {}
    return {"cell_type": "markdown", "id": f"m{abs(hash(src)) % 10**8}", "metadata": meta, "source": src}


SOLUTION_WITH_MARKERS = '''def f(x):
    """Double x."""
    ### BEGIN SOLUTION
    y = 2 * x
    return y
    ### END SOLUTION
'''


def example_nb():
    return make_nb([
        markdown("# Title"),
        code("import numpy as np"),
        code(SOLUTION_WITH_MARKERS, tags=["solution"]),
        code("ex.check_f(f)", tags=["check"]),
        code("answer = 42", tags=["solution"]),
        markdown("The ratio is 4 because ...", tags=["solution"]),
        code("print('after')"),
    ])


def test_strip_replaces_only_the_marked_lines():
    nb = example_nb()
    before = json.dumps(nb, sort_keys=True)
    out = nt.strip_solutions(nb)
    assert json.dumps(nb, sort_keys=True) == before, "the input notebook must not change"
    cells = out["cells"]
    assert nt.cell_source(cells[2]) == (
        'def f(x):\n    """Double x."""\n    raise NotImplementedError("your code here")\n')
    assert nt.cell_source(cells[4]) == '# your code here\nraise NotImplementedError("your code here")\n'
    assert nt.cell_source(cells[5]) == nt.MARKDOWN_STUB
    for k in (2, 4, 5):
        assert nt.cell_tags(cells[k]) == [nt.EXERCISE_TAG]
    for k in (0, 1, 3, 6):  # everything else keeps its source and tags
        assert nt.cell_source(cells[k]) == nt.cell_source(nb["cells"][k])
        assert nt.cell_tags(cells[k]) == nt.cell_tags(nb["cells"][k])
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in cells if c["cell_type"] == "code")
    # the stub defines the function, which raises when called
    namespace = {}
    exec(nt.cell_source(cells[2]), namespace)
    with pytest.raises(NotImplementedError, match="your code here"):
        namespace["f"](1)


def test_strip_keep_outputs_keeps_only_non_solution_outputs():
    out = nt.strip_solutions(example_nb(), keep_outputs=True)
    assert out["cells"][1]["outputs"] and out["cells"][3]["outputs"] and out["cells"][6]["outputs"]
    assert out["cells"][2]["outputs"] == [] and out["cells"][4]["outputs"] == []


def test_strip_twice_changes_nothing_more():
    once = nt.strip_solutions(example_nb())
    assert nt.strip_solutions(once) == once


def test_strip_keeps_code_outside_several_blocks_and_indentation():
    src = "a = 1\n### BEGIN SOLUTION\nb = 2\n### END SOLUTION\nc = 3\nif a:\n        ### BEGIN SOLUTION\n        d = 4\n        ### END SOLUTION\n"
    out = nt.strip_solutions(make_nb([code(src, tags=["solution"])]))
    assert nt.cell_source(out["cells"][0]) == (
        f"a = 1\n{nt.CODE_STUB}\nc = 3\nif a:\n        {nt.CODE_STUB}\n")


@pytest.mark.parametrize("src, message", [
    ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n### END SOLUTION\n", "without a"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside another"),
])
def test_strip_rejects_unbalanced_markers(src, message):
    with pytest.raises(ValueError, match=message):
        nt.strip_solutions(make_nb([code(src, tags=["solution"])]), name="nb.ipynb")


def test_strip_rejects_markers_in_an_untagged_cell():
    with pytest.raises(ValueError, match=r"nb.ipynb, cell 0 contains .* not tagged 'solution'"):
        nt.strip_solutions(make_nb([code(SOLUTION_WITH_MARKERS)]), name="nb.ipynb")


def test_strip_notebooks_writes_copies_and_protects_the_source(tmp_path):
    src = tmp_path / "notebooks"
    src.mkdir()
    nt.write_notebook(example_nb(), src / "01_a.ipynb")
    nt.write_notebook(make_nb([code("x = 1")]), src / "02_b.ipynb")
    (src / "notes.txt").write_text("not a notebook")
    written = nt.strip_notebooks(src, tmp_path / "student")
    assert [p.name for p in written] == ["01_a.ipynb", "02_b.ipynb"]
    copy = nt.read_notebook(tmp_path / "student" / "01_a.ipynb")
    assert copy == nt.strip_solutions(nt.read_notebook(src / "01_a.ipynb"))
    assert "BEGIN SOLUTION" in (src / "01_a.ipynb").read_text(), "the source keeps its solutions"
    assert "BEGIN SOLUTION" not in (tmp_path / "student" / "01_a.ipynb").read_text()
    with pytest.raises(ValueError, match="where the notebooks are"):
        nt.strip_notebooks(src, src)
    with pytest.raises(FileNotFoundError, match="no such notebook or folder"):
        nt.strip_notebooks(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(ValueError, match="no .ipynb files"):
        nt.notebook_paths(tmp_path)


def test_write_notebook_round_trips_in_jupyter_layout(tmp_path):
    nb = example_nb()
    nt.write_notebook(nb, tmp_path / "a.ipynb")
    text = (tmp_path / "a.ipynb").read_text()
    assert text.startswith('{\n "cells": [') and text.endswith("}\n")
    raw = json.loads(text)
    assert isinstance(raw["cells"][2]["source"], list), "sources are stored as lists of lines"
    assert [nt.cell_source(c) for c in nt.read_notebook(tmp_path / "a.ipynb")["cells"]] == \
        [nt.cell_source(c) for c in nb["cells"]]


def test_read_notebook_rejects_non_notebooks(tmp_path):
    (tmp_path / "bad.ipynb").write_text("{not json")
    with pytest.raises(ValueError, match="not a valid notebook"):
        nt.read_notebook(tmp_path / "bad.ipynb")
    (tmp_path / "old.ipynb").write_text(json.dumps({"nbformat": 3, "worksheets": []}))
    with pytest.raises(ValueError, match="not an nbformat 4 notebook"):
        nt.read_notebook(tmp_path / "old.ipynb")


@pytest.mark.parametrize("value, expected", [(None, False), ("", False), ("0", False), ("1", True), (" 1 ", True)])
def test_fast_mode_reads_the_environment(value, expected):
    env = {} if value is None else {nt.FAST_ENV: value}
    assert nt.fast_mode(env) is expected


@pytest.mark.parametrize("value", ["yes", "true", "2"])
def test_fast_mode_rejects_other_values(value):
    with pytest.raises(ValueError, match=f"HDETACH_FAST must be .* got '{value}'"):
        nt.fast_mode({nt.FAST_ENV: value})


def test_cli_strip(tmp_path, capsys):
    nt.write_notebook(example_nb(), tmp_path / "01_a.ipynb")
    assert cli_main(["notebooks", "strip", str(tmp_path / "01_a.ipynb"), "--out", str(tmp_path / "s")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert "raise NotImplementedError" in (tmp_path / "s" / "01_a.ipynb").read_text()
    assert cli_main(["notebooks", "strip", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "hdetach-np notebooks: error:" in capsys.readouterr().err


def test_module_command_strip(tmp_path):
    nt.write_notebook(example_nb(), tmp_path / "01_a.ipynb")
    r = subprocess.run([sys.executable, "-m", "hdetach_np.teaching.notebook_actions", "strip", str(tmp_path),
                        "--out", str(tmp_path / "student")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    expected = nt.strip_solutions(nt.read_notebook(tmp_path / "01_a.ipynb"))
    assert nt.read_notebook(tmp_path / "student" / "01_a.ipynb") == expected
    r = subprocess.run([sys.executable, "-m", "hdetach_np.teaching.notebook_actions", "strip", str(tmp_path / "nope"),
                        "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert r.returncode == 2 and "no such notebook or folder" in r.stderr


def test_cli_run_rejects_bad_timeout(capsys, tmp_path):
    assert cli_main(["notebooks", "run", str(tmp_path), "--timeout", "0"]) == 2
    assert "--timeout must be > 0" in capsys.readouterr().err


def test_strip_never_replaces_a_notebook_in_out_without_force(tmp_path, capsys):
    src, student = tmp_path / "nb", tmp_path / "student"
    src.mkdir()
    student.mkdir()
    nt.write_notebook(example_nb(), src / "01_a.ipynb")
    (student / "01_a.ipynb").write_text("a student's answers")
    with pytest.raises(ValueError, match=r"01_a.ipynb already exist\(s\) and may hold work; .* --force"):
        nt.strip_notebooks(src, student)
    assert cli_main(["notebooks", "strip", str(src), "--out", str(student)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (student / "01_a.ipynb").read_text() == "a student's answers"
    assert cli_main(["notebooks", "strip", str(src), "--out", str(student), "--force"]) == 0
    assert nt.read_notebook(student / "01_a.ipynb") == nt.strip_solutions(nt.read_notebook(src / "01_a.ipynb"))


def test_run_says_it_rewrites_in_place_and_out_refuses_to_replace(tmp_path, capsys):
    from hdetach_np.cli import build_parser

    help_text = build_parser()._subparsers._group_actions[0].choices["notebooks"]._subparsers._group_actions[0] \
        .choices["run"].format_help()
    assert "in place" in help_text and "--out" in help_text
    nt.write_notebook(make_nb([code("x = 1")]), tmp_path / "01_a.ipynb")
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "01_a.ipynb").write_text("kept")
    assert cli_main(["notebooks", "run", str(tmp_path / "01_a.ipynb"), "--out", str(tmp_path / "done")]) == 2
    assert "--force" in capsys.readouterr().err and (tmp_path / "done" / "01_a.ipynb").read_text() == "kept"
    assert cli_main(["notebooks", "run", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "where the notebooks are" in capsys.readouterr().err


def test_run_out_writes_the_executed_copy_elsewhere(tmp_path):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = make_nb([code("print(6 * 7)", outputs=[], count=None)])
    nt.write_notebook(nb, tmp_path / "01_a.ipynb")
    before = (tmp_path / "01_a.ipynb").read_text()
    written = nt.run_notebooks(tmp_path / "01_a.ipynb", fast=True, timeout=60, out=tmp_path / "executed")
    assert written == [tmp_path / "executed" / "01_a.ipynb"]
    assert (tmp_path / "01_a.ipynb").read_text() == before, "the source is not touched"
    outputs = nt.read_notebook(written[0])["cells"][0]["outputs"]
    assert any("42" in "".join(o.get("text", "")) for o in outputs)
