"""Checks for the exercises in the teaching notebooks, one module per notebook (`nb01`, ...).

A check cell calls e.g. `nb01.check_forget_gate_grad(forget_gate_grad)`: it runs the student's
function on small float64 problems, compares with the package (whose gradients are themselves
checked against finite differences), prints a confirmation when the answer is right and raises
`ExerciseError` with a hint when it is not (or when the exercise is not done yet).
"""

from __future__ import annotations

import numpy as np

from ...gradcheck import rel_error

TOLERANCE = 1e-8  # same maths in float64: only rounding differences are allowed


class ExerciseError(AssertionError):
    """The student's answer is missing or wrong; the message says what to look at."""


def call_student(fn, name: str, *args):
    """Call the student's `fn`; a stub still raising NotImplementedError becomes an ExerciseError."""
    if not callable(fn):
        raise ExerciseError(f"{name} must be a function, got {type(fn).__name__}")
    try:
        return fn(*args)
    except NotImplementedError:
        raise ExerciseError(
            f"{name} is not implemented yet: replace `raise NotImplementedError` in the cell above "
            "with your code, run that cell, then run this check again."
        ) from None


def expect_array(name: str, got, shape: tuple) -> np.ndarray:
    """The student's result must be a finite float array of exactly `shape`."""
    if not isinstance(got, np.ndarray):
        raise ExerciseError(f"{name} must return a numpy array of shape {shape}, got {type(got).__name__}")
    if got.shape != shape:
        raise ExerciseError(f"{name} must return shape {shape}, got {got.shape}")
    if got.dtype.kind != "f":
        raise ExerciseError(f"{name} must return floats, got dtype {got.dtype}")
    if not np.isfinite(got).all():
        raise ExerciseError(f"{name} returned {int(got.size - np.isfinite(got).sum())} NaN/inf value(s)")
    return got


def expect_unchanged(name: str, before: dict, after: dict) -> None:
    """Inputs must not be modified in place (a backward never modifies its inputs)."""
    for key, value in before.items():
        if not np.array_equal(value, after[key]):
            raise ExerciseError(f"{name} modified its input {key} in place; compute new arrays "
                                "instead (e.g. `a * b`, not `a *= b`)")


def close(got, expected) -> bool:
    return rel_error(got, expected) < TOLERANCE


def diagnose(name: str, got, expected, hints, dims: str, fallback: str) -> str:
    """The message for a wrong answer: the hint of the first typical mistake `got` matches
    (`hints` is a list of (wrong answer, hint)), else the general `fallback` hint."""
    where = f"{name} is not right yet on a problem with {dims} (relative error {rel_error(got, expected):.2g})"
    for candidate, hint in hints:
        if close(got, candidate):
            return f"{where}: {hint}."
    return f"{where}. Hint: {fallback}."


def passed(message: str) -> None:
    print(f"Correct! {message}")


__all__ = ["ExerciseError", "TOLERANCE", "call_student", "close", "diagnose", "expect_array", "expect_unchanged",
           "passed"]
