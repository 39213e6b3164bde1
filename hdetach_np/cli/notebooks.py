"""Subcommand `notebooks` of the `hdetach-np` command line: student copies and execution of the
teaching notebooks (the same as `python -m hdetach_np.teaching.notebook_actions`)."""

from __future__ import annotations

from ..teaching.notebook_actions import add_notebook_actions


def register(sub) -> None:
    """Add `notebooks strip|run` to the subcommands `sub`."""
    p = sub.add_parser(
        "notebooks",
        help="make student copies of the teaching notebooks, or execute them",
        description="Tools for the notebooks in notebooks/: `strip` writes student copies without "
        "the solutions; `run` executes notebooks and saves them with their outputs.",
    )
    add_notebook_actions(p)
