"""The sweep report's per-run metrics (hdetach_np.training.report): the test accuracy of MNIST runs."""

import pytest

from hdetach_np.training import report


def _mnist_history(valid: list, test_at_best: list) -> list:
    """Validation accuracies per epoch; a test record after each new best, as the training loop writes."""
    hist, best, tests = [], -1.0, iter(test_at_best)
    for epoch, acc in enumerate(valid, start=1):
        hist.append({"iteration": 100 * epoch, "epoch": epoch, "split": "valid", "accuracy": acc})
        if acc > best:
            best = acc
            hist.append({"iteration": 100 * epoch, "epoch": epoch, "split": "test", "accuracy": next(tests),
                         "best": True})
    return hist


def test_test_accuracy_at_best_is_the_last_test_record():
    hist = _mnist_history([0.5, 0.8, 0.7, 0.85, 0.6], [0.45, 0.79, 0.86])
    m = report.run_metrics(hist)
    assert m["test_accuracy_at_best"] == 0.86 and m["best_accuracy"] == 0.85 and m["final_accuracy"] == 0.6
    copying = [{"iteration": 100, "split": "valid", "accuracy": 0.3}]
    assert "test_accuracy_at_best" not in report.run_metrics(copying)  # no test split, no column


def test_the_report_shows_and_tests_the_test_accuracy_of_mnist_runs():
    groups = {
        "p=0": [{"name": f"p=0,seed={s}", "seed": s, "history": _mnist_history([0.9, 0.95], [0.88, t])}
                for s, t in enumerate([0.90, 0.91, 0.92, 0.93])],
        "p=0.25": [{"name": f"p=0.25,seed={s}", "seed": s, "history": _mnist_history([0.9, 0.95], [0.88, t])}
                   for s, t in enumerate([0.94, 0.95, 0.96, 0.97])],
    }
    summary = report.summarize_groups(groups)
    assert summary["groups"]["p=0.25"]["test_accuracy_at_best"]["median"] == pytest.approx(0.955)
    c = summary["comparisons"]["p=0.25"]["test_accuracy_at_best"]
    assert (c["U"], c["rank_biserial"], c["method"]) == (16.0, 1.0, "exact")
    assert c["p_value"] == pytest.approx(2 / 70, rel=1e-12)  # every seed above every reference seed: 2 / C(8, 4)
    md = report.report_markdown(summary)
    assert "test acc. at best valid" in md and "| p=0.25 | test acc. at best valid | 16.0 | 0.029 | exact |" in md

    no_test = {k: [dict(r, history=[h for h in r["history"] if h["split"] != "test"]) for r in rs]
               for k, rs in groups.items()}
    assert "test acc." not in report.report_markdown(report.summarize_groups(no_test))
