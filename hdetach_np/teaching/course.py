"""The notebooks as a course: nbgrader metadata on the exercises, and launch links (Colab, Binder).

    hdetach-np notebooks nbgrader-metadata notebooks/*.ipynb   # mark solution and check cells for nbgrader
    hdetach-np notebooks launch-links notebooks/*.ipynb        # the opening cell with Colab and Binder links

nbgrader (https://nbgrader.readthedocs.io) reads the metadata below from each cell
(`cell["metadata"]["nbgrader"]`, schema version 3):

- a cell tagged `solution` (the answer between `### BEGIN SOLUTION` and `### END SOLUTION`) is a
  solution cell, `{"solution": true, "grade": false, "locked": false}`; `nbgrader generate_assignment`
  replaces the answer with `raise NotImplementedError()` in the student version;
- the cell tagged `check` that follows it is a graded test cell, `{"grade": true, "solution": false,
  "locked": true, "points": 1}`: `nbgrader autograde` gives its points when it runs without error
  and 0 when it raises (the package's `exercises.check_...` functions raise on a wrong answer);
- each such cell has a `grade_id` unique in its notebook, named after the exercise: the function
  the check cell calls, `exercises.check_NAME(...)`, gives `NAME-solution` and `NAME-check`.

The functions here only add or update these entries; running them twice changes nothing more.
Standard library only.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from .notebooks import CHECK_TAG, SOLUTION_TAG, cell_source, cell_tags

NBGRADER_SCHEMA_VERSION = 3
CHECK_POINTS = 1
LAUNCH_TAG = "launch"
INSTALL_MARKER = "# Colab, Binder: install hdetach_np when it is not importable"

_CHECK_CALL = re.compile(r"\bexercises\.check_([A-Za-z0-9_]+)\s*\(")


def _exercise_name(check_cell: dict, where: str) -> str:
    match = _CHECK_CALL.search(cell_source(check_cell))
    if match is None:
        raise ValueError(f"{where}: a cell tagged '{CHECK_TAG}' should call exercises.check_NAME(...), "
                         f"got {cell_source(check_cell)[:60]!r}")
    return match.group(1)


def nbgrader_cell_metadata(kind: str, grade_id: str, points: int = CHECK_POINTS) -> dict:
    """The nbgrader metadata of one cell.

    Parameters
    ----------
    kind : {"solution", "check"}
        A solution cell (autograded through its check) or a graded, locked test cell.
    grade_id : str
        The cell's id, unique in its notebook.
    points : int
        Points of a check cell (ignored for a solution cell).

    Returns
    -------
    dict
        The dict for `cell["metadata"]["nbgrader"]`.
    """
    if kind == SOLUTION_TAG:
        return {"grade": False, "grade_id": grade_id, "locked": False,
                "schema_version": NBGRADER_SCHEMA_VERSION, "solution": True, "task": False}
    if kind == CHECK_TAG:
        if not (isinstance(points, int) and points > 0):
            raise ValueError(f"points must be a positive integer, got {points!r}")
        return {"grade": True, "grade_id": grade_id, "locked": True, "points": points,
                "schema_version": NBGRADER_SCHEMA_VERSION, "solution": False, "task": False}
    raise ValueError(f"kind must be '{SOLUTION_TAG}' or '{CHECK_TAG}', got {kind!r}")


def add_nbgrader_metadata(nb: dict, name: str = "notebook", points: int = CHECK_POINTS) -> dict:
    """Give every exercise of `nb` its nbgrader metadata, in place; returns `nb`.

    Each code cell tagged `solution` is paired with the next cell tagged `check` (the layout
    tests/test_notebooks.py enforces). Metadata that nbgrader keeps on a cell besides the keys set
    here (e.g. a checksum) is kept. Cells that are neither lose a stale `nbgrader` entry.

    Parameters
    ----------
    nb : dict
        An nbformat 4 notebook as read by `read_notebook`.
    name : str
        The notebook's name, for error messages.
    points : int
        Points of each check cell.

    Returns
    -------
    dict
        `nb`, modified.

    Raises
    ------
    ValueError
        When a solution cell has no check cell after it, a check cell follows no solution cell, or
        two exercises would share a grade id.
    """
    pending, seen = None, set()
    for k, cell in enumerate(nb["cells"]):
        tags = cell_tags(cell)
        if SOLUTION_TAG in tags:
            if cell["cell_type"] != "code":
                raise ValueError(f"{name}, cell {k}: a cell tagged '{SOLUTION_TAG}' must be a code cell "
                                 "to be autograded")
            if pending is not None:
                raise ValueError(f"{name}, cell {pending}: solution cell without a check cell after it")
            pending = k
        elif CHECK_TAG in tags:
            if pending is None:
                raise ValueError(f"{name}, cell {k}: check cell that follows no solution cell")
            exercise = _exercise_name(cell, f"{name}, cell {k}")
            if exercise in seen:
                raise ValueError(f"{name}, cell {k}: a second exercise named {exercise!r}; grade ids must be unique")
            seen.add(exercise)
            _set_nbgrader(nb["cells"][pending], nbgrader_cell_metadata(SOLUTION_TAG, f"{exercise}-solution"))
            _set_nbgrader(cell, nbgrader_cell_metadata(CHECK_TAG, f"{exercise}-check", points))
            pending = None
        else:
            cell.get("metadata", {}).pop("nbgrader", None)
    if pending is not None:
        raise ValueError(f"{name}, cell {pending}: solution cell without a check cell after it")
    return nb


def _set_nbgrader(cell: dict, meta: dict) -> None:
    current = cell.setdefault("metadata", {}).get("nbgrader", {})
    cell["metadata"]["nbgrader"] = {**current, **meta}


def nbgrader_ids(nb: dict) -> list[tuple[str, str]]:
    """(grade_id, "solution"|"check") of every cell of `nb` that carries nbgrader metadata, in order."""
    out = []
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta:
            out.append((meta.get("grade_id", ""), SOLUTION_TAG if meta.get("solution") else CHECK_TAG))
    return out


# ---------------------------------------------------------------------------------------------
# Launch links and the install cell
# ---------------------------------------------------------------------------------------------


def _github_path(repo_url: str) -> str:
    match = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?", repo_url.strip())
    if match is None:
        raise ValueError(f"expected the repository URL as https://github.com/OWNER/NAME, got {repo_url!r}")
    return match.group(1)


def launch_links(notebook: str, repo_url: str, branch: str = "main") -> str:
    """The Markdown of a notebook's opening cell: links that open it on Colab and on Binder.

    Parameters
    ----------
    notebook : str
        The notebook's file name in `notebooks/`, e.g. "01_lstm_forward_backward.ipynb".
    repo_url : str
        The repository, https://github.com/OWNER/NAME (setup.cfg's `url`).
    branch : str
        The branch the links open.

    Returns
    -------
    str
        Markdown, one line of links and one line on installing the package.
    """
    repo = _github_path(repo_url)
    colab = f"https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{notebook}"
    binder = f"https://mybinder.org/v2/gh/{repo}/{branch}?labpath={quote('notebooks/' + notebook, safe='')}"
    return (f"**Run this notebook online:** [Open in Colab]({colab}) · [Launch on Binder]({binder})\n\n"
            "Online, the first code cell installs `hdetach_np` from the repository when it is not "
            "installed yet; on your own machine install it with `pip install -e .` from a clone.\n")


def install_lines(repo_url: str) -> str:
    """The lines that open a notebook's first code cell: install hdetach_np when it is missing."""
    _github_path(repo_url)
    return (f"{INSTALL_MARKER}\n"
            "try:\n"
            "    import hdetach_np  # noqa: F401\n"
            "except ImportError:\n"
            f'    %pip install --quiet "hdetach-np @ git+{repo_url.rstrip("/")}"\n')


def repository_url(setup_cfg="setup.cfg") -> str:
    """The `url` in the [metadata] of a setup.cfg (the repository's one definition of its URL)."""
    import configparser
    from pathlib import Path

    path = Path(setup_cfg)
    if not path.is_file():
        raise FileNotFoundError(f"no {path}: run from the repository root or pass --url")
    parser = configparser.ConfigParser()
    parser.read(path, encoding="utf-8")
    url = parser.get("metadata", "url", fallback="").strip()
    if not url:
        raise ValueError(f"{path} has no url in [metadata]; add one or pass --url")
    return url


def add_launch_cells(nb: dict, notebook: str, repo_url: str, branch: str = "main") -> dict:
    """Open `nb` with its launch links and install lines, in place; returns `nb`.

    A Markdown cell tagged `launch` becomes (or is inserted as) the first cell, and the first code
    cell starts with `install_lines(repo_url)`. Running this again replaces both with the current
    text instead of adding new ones.
    """
    links = {"cell_type": "markdown", "id": "launch-links", "metadata": {"tags": [LAUNCH_TAG]},
             "source": launch_links(notebook, repo_url, branch)}
    cells = nb["cells"]
    existing = [k for k, c in enumerate(cells) if LAUNCH_TAG in cell_tags(c)]
    if existing:
        cells[existing[0]]["source"] = links["source"]
        if existing[0] != 0:
            cells.insert(0, cells.pop(existing[0]))
    else:
        if nb.get("nbformat_minor", 0) < 5:
            links.pop("id")
        cells.insert(0, links)
    code = next((c for c in cells if c["cell_type"] == "code"), None)
    if code is None:
        raise ValueError(f"{notebook} has no code cell to install the package in")
    src = cell_source(code)
    if src.startswith(INSTALL_MARKER):  # drop the previous install lines (up to the first blank line)
        src = src.split("\n\n", 1)[1] if "\n\n" in src else ""
    code["source"] = install_lines(repo_url) + "\n" + src
    return nb
