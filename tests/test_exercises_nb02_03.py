"""The exercise checks of notebooks 02 and 03 accept right answers and reject wrong ones with a
useful hint.

The right answers here are written independently of the package from the equations (float64);
the checks compare against `step_jacobians`, `forward_mode`, `gradient_paths` and
`suppression_sweep`. The references of the checks are themselves checked against finite
differences.
"""

import re

import numpy as np
import pytest

import hdetach_np as hd
from hdetach_np.gradcheck import numerical_jacobian, rel_error
from hdetach_np.teaching.exercises import ExerciseError, nb02, nb03


def not_done(*args):
    raise NotImplementedError("your code here")


# ---------------------------------------------------------------------------------------------
# Notebook 02, exercise 1: Psi~_t = dc_t/dh_{t-1}
# ---------------------------------------------------------------------------------------------


def psi_tilde(gates, c_prev, Wh, order="ifog", transpose=True, rows=True, drop=None, f_factor=True):
    """The right answer (default arguments) and typical mistakes."""
    H = c_prev.shape[1]
    blk = {g: slice(k * H, (k + 1) * H) for k, g in enumerate(order)}
    i, f, g = gates[:, blk["i"]], gates[:, blk["f"]], gates[:, blk["g"]]
    W = {name: Wh[:, blk[name]].T if transpose else Wh[:, blk[name]] for name in "ifg"}
    coef = {"f": (c_prev if f_factor else 1.0) * f * (1 - f), "i": g * i * (1 - i), "g": i * (1 - g ** 2)}
    out = np.zeros((gates.shape[0], H, H))
    for name in "fig":
        if name == drop:
            continue
        if rows:
            out += np.einsum("nj,jm->njm", coef[name], W[name])  # diag(coef) W
        else:
            out += np.einsum("jm,nm->njm", W[name], coef[name])  # W diag(coef): a mistake
    return out


def test_psi_tilde_right_answer_passes(capsys):
    nb02.check_psi_tilde(psi_tilde)
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs, hint", [
    (dict(transpose=False), "use the transposed gate blocks"),
    (dict(rows=False), "scale the ROWS"),
    (dict(order="ifgo"), "torch.nn.LSTM's order"),
    (dict(f_factor=False), r"the forget gate multiplies c_\{t-1\}"),
    (dict(drop="f"), "left out the forget-gate term"),
    (dict(drop="i"), "left out the input-gate term"),
    (dict(drop="g"), "left out the candidate term"),
])
def test_psi_tilde_mistakes_get_hints(kwargs, hint):
    with pytest.raises(ExerciseError, match=hint):
        nb02.check_psi_tilde(lambda gates, c_prev, Wh: psi_tilde(gates, c_prev, Wh, **kwargs))


def test_psi_tilde_other_failures():
    with pytest.raises(ExerciseError, match="not implemented yet"):
        nb02.check_psi_tilde(not_done)
    with pytest.raises(ExerciseError, match=r"must return shape \(3, 4, 4\), got \(3, 4\)"):
        nb02.check_psi_tilde(lambda gates, c_prev, Wh: c_prev.copy())
    with pytest.raises(ExerciseError, match=r"Hint: c_t = f \* c_\{t-1\} \+ i \* g"):
        nb02.check_psi_tilde(lambda gates, c_prev, Wh: 2 * psi_tilde(gates, c_prev, Wh))

    def modifies_gates(gates, c_prev, Wh):
        out = psi_tilde(gates, c_prev, Wh)
        gates *= 2
        return out

    with pytest.raises(ExerciseError, match="modified its input gates in place"):
        nb02.check_psi_tilde(modifies_gates)


def test_psi_tilde_reference_is_the_finite_difference_jacobian():
    """dc_t/dh_{t-1} by centred differences of one step equals the checks' reference."""
    cache = nb02.random_cache(7, 2, 3, 2, 4)
    t = 1
    x_t, h_prev, c_prev = cache.x[t], cache.h[t].copy(), cache.c[t]

    def c_t():
        return hd.lstm_step_forward(x_t, h_prev, c_prev, cache.params)[1]

    num = numerical_jacobian(c_t, h_prev).reshape(3, 4, 3, 4)
    n = np.arange(3)
    assert rel_error(hd.step_jacobians(cache, t).psi_tilde, num[n, :, n]) < 1e-8
    assert rel_error(psi_tilde(cache.gates[t], c_prev, cache.params.Wh), num[n, :, n]) < 1e-8


# ---------------------------------------------------------------------------------------------
# Notebook 02, exercise 2: one forward-mode step
# ---------------------------------------------------------------------------------------------


def forward_step(J, z_prev, lam):
    return np.einsum("nij,njp->nip", J.A + lam * J.B, z_prev) + J.E


def test_forward_step_right_answer_passes(capsys):
    nb02.check_forward_step(forward_step)
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda J, z, lam: J.A @ z + lam * (J.B @ z), "you left out E_t"),
    (lambda J, z, lam: lam * (J.A @ z) + J.B @ z + J.E, "lam belongs to B_t"),
    (lambda J, z, lam: lam * (J.B @ z) + J.E, "you left out A_t z_{t-1}"),
    (lambda J, z, lam: J.A @ z + J.B @ z + J.E, "multiply B_t z_{t-1} by lam"),
    (lambda J, z, lam: lam * (J.A @ z + J.B @ z + J.E), "only B_t is multiplied by lam; A_t z_{t-1} and E_t"),
    (lambda J, z, lam: lam * (J.A @ z + J.B @ z) + J.E, "only B_t is multiplied by lam; A_t z_{t-1} is not"),
    (lambda J, z, lam: J.A @ z + lam * (J.B @ z) + 2 * J.E, "Hint: z_t = (A_t + lam B_t) z_prev"),
])
def test_forward_step_mistakes_get_hints(wrong, hint):
    with pytest.raises(ExerciseError, match=re.escape(hint)):
        nb02.check_forward_step(wrong)


def test_forward_step_other_failures():
    with pytest.raises(ExerciseError, match="not implemented yet"):
        nb02.check_forward_step(not_done)

    def modifies_z(J, z, lam):
        out = forward_step(J, z, lam)
        z += 1
        return out

    with pytest.raises(ExerciseError, match="modified its input z_prev in place"):
        nb02.check_forward_step(modifies_z)
    with pytest.raises(ExerciseError, match="must return a numpy array"):
        nb02.check_forward_step(lambda J, z, lam: None)


# ---------------------------------------------------------------------------------------------
# Notebook 02, exercise 3: Wh = 0
# ---------------------------------------------------------------------------------------------


def test_wh_zero_right_answer_passes(capsys):
    nb02.check_wh_zero("h", False)
    nb02.check_wh_zero(" H ", np.bool_(False))
    assert capsys.readouterr().out.count("Correct!") == 2


@pytest.mark.parametrize("part, wh_zero, hint", [
    ("cell", False, "never goes through Wh"),
    ("both", False, "one part survives"),
    ("neither", False, r"What is B_t when Wh = 0"),
    ("h", True, "does not make its own gradient zero"),
    ("hpath", False, "must be one of 'cell', 'h', 'both', 'neither'"),
    (None, False, "must be one of"),
    ("h", "no", "must be True or False"),
])
def test_wh_zero_wrong_answers_fail(part, wh_zero, hint):
    with pytest.raises(ExerciseError, match=hint):
        nb02.check_wh_zero(part, wh_zero)


def test_wh_zero_answer_is_computed_not_stored():
    """The check's truth comes from the computation: h part zero, cell part and dL/dWh not."""
    n = nb02.wh_zero_norms()
    assert n["h"]["all"] < 1e-14 * n["total"]["all"]
    assert n["cell"]["all"] > 0.1 and n["total"]["Wh"] > 0.1
    # with the recurrent weights back, the h part is not zero
    cache = nb02.random_cache(5, 6, 3, 2, 4)
    dhs = np.random.default_rng(6).standard_normal((6, 3, 4))
    assert hd.gradient_paths(dhs, cache).norms()["h"]["all"] > 1e-3


# ---------------------------------------------------------------------------------------------
# Notebook 03, exercise 1: the cell share at scale 4
# ---------------------------------------------------------------------------------------------

# a configuration where the cell share falls steeply around s = 4 (seed 0 of notebook 03's full sweep)
SWEEP = hd.SuppressionConfig(scales=(2.0, 2.8284, 5.6569), seeds=(0,), delay=50, N=20, H=64, ps=(0.5,))


@pytest.fixture(scope="module")
def sweep():
    return hd.suppression_sweep(SWEEP)


def test_ratio_at_4_interpolated_and_exact_answers_pass(sweep, capsys):
    share = sweep.ratio("cell/total", "all").mean(axis=0)
    interp = float(np.exp(np.interp(np.log(4.0), np.log(sweep.scales), np.log(share))))
    exact = nb03.ratios_at_scale(SWEEP)["plain"]
    direct = hd.suppression_sweep(hd.SuppressionConfig(scales=(4.0,), seeds=(0,), delay=50, N=20, H=64, ps=()))
    assert exact == pytest.approx(float(direct.ratio("cell/total", "all")[0, 0]), rel=1e-12)
    assert 0.2 < exact < 0.7  # a moderate share: s = 4 is on the steep part of the curve
    nb03.check_ratio_at_scale_4(interp, SWEEP)
    nb03.check_ratio_at_scale_4(np.float64(exact), SWEEP)
    nb03.check_ratio_at_scale_4(np.array([exact * 1.4]), SWEEP)
    assert capsys.readouterr().out.count("Correct!") == 3


def test_ratio_at_4_typical_wrong_answers_fail(sweep):
    share = sweep.ratio("cell/total", "all").mean(axis=0)
    hdetach = nb03.ratios_at_scale(SWEEP)["p=0.5"]
    with pytest.raises(ExerciseError, match="too high"):
        nb03.check_ratio_at_scale_4(float(share[0]), SWEEP)  # the value at s = 2
    with pytest.raises(ExerciseError, match="too high"):
        nb03.check_ratio_at_scale_4(1.0, SWEEP)  # "the gradient is all cell part"
    with pytest.raises(ExerciseError, match="expected h-detach gradient"):
        nb03.check_ratio_at_scale_4(hdetach, SWEEP)
    with pytest.raises(ExerciseError, match="too low"):
        nb03.check_ratio_at_scale_4(float(share[0] * share[-1] ** 3), SWEEP)
    exact = nb03.ratios_at_scale(SWEEP)["plain"]
    with pytest.raises(ExerciseError, match="not within a factor 1.5"):
        nb03.check_ratio_at_scale_4(exact / 1.6, SWEEP)


def test_ratio_at_4_bad_input():
    with pytest.raises(ExerciseError, match="must be one number"):
        nb03.check_ratio_at_scale_4("0.3", SWEEP)
    with pytest.raises(ExerciseError, match="must be one number"):
        nb03.check_ratio_at_scale_4([0.3, 0.4], SWEEP)
    with pytest.raises(ExerciseError, match="must be a positive number"):
        nb03.check_ratio_at_scale_4(float("nan"), SWEEP)
    with pytest.raises(ExerciseError, match="must be a positive number"):
        nb03.check_ratio_at_scale_4(-0.3, SWEEP)
    with pytest.raises(ExerciseError, match="SuppressionConfig"):
        nb03.check_ratio_at_scale_4(0.3, {"delay": 50})


# ---------------------------------------------------------------------------------------------
# Notebook 03, exercise 2: the product of the cell blocks
# ---------------------------------------------------------------------------------------------


def cell_jacobian_product(cache, end_step, k, first_shift=0, k_at="end", top_f=False, transpose=False):
    """The right answer (default arguments) and typical mistakes, written from the gates."""
    H = cache.params.hidden_size
    N = cache.x.shape[1]
    first = end_step - k + 1 + first_shift
    f = cache.gates[:, :, H:2 * H]
    kk = cache.gates[:, :, 2 * H:3 * H] * (1 - cache.tanh_c ** 2) * f
    out = np.zeros((N, 2 * H, 2 * H))
    f_all = np.ones((N, H))
    for t in range(first, end_step + 1):
        f_all = f_all * f[t]
    at = end_step if k_at == "end" else first
    top = f_all if top_f else kk[at] * f_all / f[at]
    for j in range(H):
        out[:, j, H + j] = top[:, j]
        out[:, H + j, H + j] = f_all[:, j]
    return np.swapaxes(out, 1, 2) if transpose else out


def test_cell_jacobian_product_right_answer_passes(capsys):
    nb03.check_cell_jacobian_product(cell_jacobian_product)
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs, hint", [
    (dict(top_f=True), "its last factor is k_end"),
    (dict(k_at="first"), "k belongs to the LAST step"),
    (dict(transpose=True), "you returned the transpose"),
])
def test_cell_jacobian_product_mistakes_get_hints(kwargs, hint):
    with pytest.raises(ExerciseError, match=hint):
        nb03.check_cell_jacobian_product(lambda cache, end, k: cell_jacobian_product(cache, end, k, **kwargs))


def test_cell_jacobian_product_wrong_number_of_factors():
    with pytest.raises(ExerciseError, match="you used k-1"):
        nb03.check_cell_jacobian_product(lambda c, end, k: cell_jacobian_product(c, end, k, first_shift=1 if k > 1 else 0))
    with pytest.raises(ExerciseError, match="you used k\\+1"):
        nb03.check_cell_jacobian_product(
            lambda c, end, k: cell_jacobian_product(c, end, k, first_shift=-1 if end - k >= 0 else 0))


def test_cell_jacobian_product_other_failures():
    with pytest.raises(ExerciseError, match="not implemented yet"):
        nb03.check_cell_jacobian_product(not_done)
    with pytest.raises(ExerciseError, match=r"Hint: A_t = \[\[0, diag k_t\], \[0, diag f_t\]\]"):
        nb03.check_cell_jacobian_product(lambda c, end, k: 2 * cell_jacobian_product(c, end, k))
    with pytest.raises(ExerciseError, match=r"must return shape \(3, 8, 8\)"):
        nb03.check_cell_jacobian_product(lambda c, end, k: np.zeros((3, 4, 4)))

    def modifies_cache(cache, end, k):
        out = cell_jacobian_product(cache, end, k)
        cache.gates[end] *= 0.5
        return out

    with pytest.raises(ExerciseError, match="modified its input cache.gates in place"):
        nb03.check_cell_jacobian_product(modifies_cache)


def test_cell_product_reference_is_the_cell_part_of_jacobian_products():
    """The reference product of A_t has the norms `jacobian_products` reports for its cell part,
    and at lambda = 0 the full product of step Jacobians is this product."""
    cache = nb03.random_cache(2, 5, 2, 1, 3)
    jp = hd.jacobian_products(cache, lambdas=(0.0,))
    for k in (1, 3, 5):
        ref = nb03.reference_cell_product(cache, 4, k)
        assert np.mean(np.linalg.norm(ref, axis=(1, 2))) == pytest.approx(jp.cell_fro[k - 1], rel=1e-12)
        assert rel_error(ref, cell_jacobian_product(cache, 4, k)) < 1e-12
