"""The exercise checks of notebook 01 accept right answers and reject wrong ones with a useful hint.

The right answers here are written independently of the package from the equations (float64);
the checks compare against `lstm_step_backward` / `lstm_backward`.
"""

import numpy as np
import pytest

from hdetach_np.teaching.exercises import ExerciseError, nb01


def _gates(cache):
    H = cache.c_prev.shape[1]
    return (cache.gates[:, k * H:(k + 1) * H] for k in range(4))  # i, f, o, g


def forget_gate_grad(dh, dc, cache):
    i, f, o, g = _gates(cache)
    return (dc + dh * o * (1 - cache.tanh_c ** 2)) * cache.c_prev * f * (1 - f)


def gate_grads(dh, dc, cache, order="ifog"):
    i, f, o, g = _gates(cache)
    dc_all = dc + dh * o * (1 - cache.tanh_c ** 2)
    d = {"i": dc_all * g * i * (1 - i), "f": dc_all * cache.c_prev * f * (1 - f),
         "o": dh * cache.tanh_c * o * (1 - o), "g": dc_all * i * (1 - g ** 2)}
    return np.concatenate([d[k] for k in order], axis=1)


def cell_path_c0_grad(dh_T, cache, first=0, with_h_factor=True):
    H = dh_T.shape[1]
    o_T = cache.gates[-1, :, 2 * H:3 * H]
    factor = o_T * (1 - cache.tanh_c[-1] ** 2) if with_h_factor else 1.0
    return dh_T * factor * np.prod(cache.gates[first:, :, H:2 * H], axis=0)


def not_done(*args):
    raise NotImplementedError("your code here")


def test_right_answers_pass(capsys):
    nb01.check_forget_gate_grad(forget_gate_grad)
    nb01.check_gate_grads(gate_grads)
    nb01.check_cell_path_c0_grad(cell_path_c0_grad)
    out = capsys.readouterr().out
    assert out.count("Correct!") == 3


@pytest.mark.parametrize("check", [nb01.check_forget_gate_grad, nb01.check_gate_grads, nb01.check_cell_path_c0_grad])
def test_a_stub_is_reported_as_not_done(check):
    with pytest.raises(ExerciseError, match="not implemented yet"):
        check(not_done)


def test_forget_gate_mistakes_get_hints():
    def no_h_path(dh, dc, cache):
        i, f, o, g = _gates(cache)
        return dc * cache.c_prev * f * (1 - f)

    def no_sigmoid_derivative(dh, dc, cache):
        i, f, o, g = _gates(cache)
        return (dc + dh * o * (1 - cache.tanh_c ** 2)) * cache.c_prev

    def wrong_block(dh, dc, cache):
        return gate_grads(dh, dc, cache)[:, :cache.c_prev.shape[1]]  # the input gate instead

    with pytest.raises(ExerciseError, match="left out the path through h_t"):
        nb01.check_forget_gate_grad(no_h_path)
    with pytest.raises(ExerciseError, match="derivative of the sigmoid"):
        nb01.check_forget_gate_grad(no_sigmoid_derivative)
    with pytest.raises(ExerciseError, match=r"Hint: the forget gate is cache.gates\[:, H:2\*H\]"):
        nb01.check_forget_gate_grad(wrong_block)
    with pytest.raises(ExerciseError, match=r"must return shape \(3, 4\), got \(3, 16\)"):
        nb01.check_forget_gate_grad(gate_grads)
    with pytest.raises(ExerciseError, match="must return a numpy array"):
        nb01.check_forget_gate_grad(lambda dh, dc, cache: 0.0)


def test_in_place_changes_are_rejected():
    def modifies_dc(dh, dc, cache):
        out = forget_gate_grad(dh, dc, cache)
        dc *= 2
        return out

    with pytest.raises(ExerciseError, match="modified its input dc in place"):
        nb01.check_forget_gate_grad(modifies_dc)


def test_gate_grads_mistakes_get_hints():
    with pytest.raises(ExerciseError, match="torch.nn.LSTM's order"):
        nb01.check_gate_grads(lambda dh, dc, cache: gate_grads(dh, dc, cache, order="ifgo"))

    def wrong_g(dh, dc, cache):
        da = gate_grads(dh, dc, cache)
        H = cache.c_prev.shape[1]
        da[:, 3 * H:] /= 1 - cache.gates[:, 3 * H:] ** 2  # forgot tanh'
        return da

    with pytest.raises(ExerciseError, match=r"block\(s\) of gate g are wrong \(columns \[12:16\]"):
        nb01.check_gate_grads(wrong_g)


def test_cell_path_mistakes_get_hints():
    with pytest.raises(ExerciseError, match="must include f_1"):
        nb01.check_cell_path_c0_grad(lambda dh_T, cache: cell_path_c0_grad(dh_T, cache, first=1))
    with pytest.raises(ExerciseError, match=r"multiply by o_T \* \(1 - tanh\(c_T\)\*\*2\)"):
        nb01.check_cell_path_c0_grad(lambda dh_T, cache: cell_path_c0_grad(dh_T, cache, with_h_factor=False))
    with pytest.raises(ExerciseError, match="T=5, N=3, D=2, H=4"):
        nb01.check_cell_path_c0_grad(lambda dh_T, cache: dh_T.copy())


def test_reference_gate_grads_matches_finite_differences():
    """The checks' reference dL/da (from dL/db one example at a time) against centred differences
    of a loss in the pre-activation, L = sum(G_h * h) + sum(G_c * c) with h, c computed from a."""
    from hdetach_np.gradcheck import numerical_gradient, rel_error

    dh, dc, cache = nb01._step_problem(5, 2, 3, 4)
    N, H = dh.shape
    p = cache.params
    a = cache.x @ p.Wx + cache.h_prev @ p.Wh + p.b  # (N, 4H)

    def loss():
        s = 1 / (1 + np.exp(-a[:, :3 * H]))
        i, f, o = s[:, :H], s[:, H:2 * H], s[:, 2 * H:]
        g = np.tanh(a[:, 3 * H:])
        c = f * cache.c_prev + i * g
        return np.sum(dh * o * np.tanh(c)) + np.sum(dc * c)

    # dc here plays the role of dL/dc_t from later steps: the loss term sum(dc * c)
    assert rel_error(nb01.reference_gate_grads(dh, dc, cache), numerical_gradient(loss, a)) < 1e-8
