"""Optimizers: update rules against hand-derived values and plain reference formulas."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnscratch
from nnscratch import optimizers
from nnscratch.optimizers import SGD, Adam, Optimizer, RMSprop
from nnscratch.parameter import Parameter

try:
    from tests.strategies import rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from strategies import rng_seeds


def make_param(value, grad=None, dtype=np.float64, trainable=True):
    p = Parameter(np.array(value, dtype=dtype), "kernel", trainable=trainable)
    if grad is not None:
        p.grad[...] = grad
    return p


def run_steps(optimizer, param, grads):
    """Apply one step per gradient; return the values after each step."""
    values = []
    for g in grads:
        param.grad[...] = g
        optimizer.apply_gradients([param])
        values.append(param.value.copy())
    return values


# ---------------------------------------------------------------- SGD

def test_sgd_plain_step():
    p = make_param([1.0, 2.0, 3.0, 4.0], grad=[1.0, 6.0, 7.0, 2.0])
    SGD(learning_rate=0.5).apply_gradients([p])
    np.testing.assert_allclose(p.value, [0.5, -1.0, -0.5, 3.0])  # w - 0.5 g


def test_sgd_momentum_by_hand():
    # g = 1 always, lr = 0.1, mu = 0.9:  v = -0.1, -0.19, -0.271;  w = w + v
    values = run_steps(SGD(0.1, momentum=0.9), make_param(1.0), [1.0] * 3)
    np.testing.assert_allclose(values, [0.9, 0.71, 0.439], rtol=1e-12)


def test_sgd_nesterov_by_hand():
    # same v as above, but w = w + mu v - lr g:  0.81, 0.539, 0.1951
    values = run_steps(SGD(0.1, momentum=0.9, nesterov=True), make_param(1.0), [1.0] * 3)
    np.testing.assert_allclose(values, [0.81, 0.539, 0.1951], rtol=1e-12)


def test_sgd_momentum_with_changing_gradients_matches_formula():
    grads = [0.5, -1.0, 2.0, 0.25]
    lr, mu = 0.05, 0.8
    for nesterov in (False, True):
        w, v = 3.0, 0.0
        expected = []
        for g in grads:
            v = mu * v - lr * g
            w = w + (mu * v - lr * g if nesterov else v)
            expected.append(w)
        values = run_steps(SGD(lr, momentum=mu, nesterov=nesterov), make_param(3.0), grads)
        np.testing.assert_allclose(values, expected, rtol=1e-12)


def test_sgd_matches_keras_golden_values():
    # Golden values from Keras's sgd_test (SGD(nesterov=True) with momentum 0).
    x = make_param(np.ones(10))
    opt = SGD(nesterov=True)
    run_steps(opt, x, [np.full(10, 0.01)])
    grads = np.arange(1, 11) / 10
    for i in range(5):
        expected = 0.9999 - 0.001 * i * np.arange(1, 11)
        np.testing.assert_allclose(x.value, expected, atol=5e-4)
        run_steps(opt, x, [grads])


@pytest.mark.parametrize("momentum", [-0.1, 1.5])
def test_sgd_rejects_bad_momentum(momentum):
    with pytest.raises(ValueError, match="momentum"):
        SGD(momentum=momentum)


# ---------------------------------------------------------------- RMSprop

def test_rmsprop_keras_docstring_example():
    # Keras docs: RMSprop(0.1) on loss w^2 / 2 from w = 10 gives 9.683772.
    p = make_param([10.0], grad=[10.0])
    RMSprop(learning_rate=0.1).apply_gradients([p])
    # s = 0.1 * 100 = 10,  w = 10 - 0.1 * 10 / sqrt(10 + 1e-7)
    np.testing.assert_allclose(p.value, [10 - 1 / math.sqrt(10 + 1e-7)], rtol=1e-12)
    np.testing.assert_allclose(p.value, [9.683772], atol=1e-6)


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_rmsprop_matches_formula(centered, momentum):
    grads = [0.3, -1.2, 0.7, 2.0, -0.1]
    lr, rho, eps = 0.01, 0.9, 1e-7
    w, s, g_bar, m = 1.0, 0.0, 0.0, 0.0
    expected = []
    for g in grads:
        s = rho * s + (1 - rho) * g * g
        g_bar = rho * g_bar + (1 - rho) * g
        denominator = s - g_bar**2 + eps if centered else s + eps
        delta = lr * g / math.sqrt(denominator)
        m = momentum * m + delta
        w -= m if momentum > 0 else delta
        expected.append(w)
    opt = RMSprop(lr, rho=rho, momentum=momentum, epsilon=eps, centered=centered)
    np.testing.assert_allclose(run_steps(opt, make_param(1.0), grads), expected, rtol=1e-12)


def test_rmsprop_matches_keras_golden_values():
    # Golden values from Keras's rmsprop_test (RMSprop(centered=True)).
    x = make_param(np.ones(10))
    opt = RMSprop(centered=True)
    run_steps(opt, x, [np.full(10, 0.01)])
    for expected in [0.9967, 0.9933, 0.9908, 0.9885, 0.9864]:
        np.testing.assert_allclose(x.value, expected, atol=5e-4)
        run_steps(opt, x, [np.arange(1, 11) / 10])


# ---------------------------------------------------------------- Adam

def adam_reference(grads, lr, b1, b2, eps, w=0.0):
    """Textbook Adam with explicit bias correction (Kingma & Ba, Algorithm 1).

    Keras folds the corrections into the step size; both agree when the
    paper's epsilon is eps / sqrt(1 - b2^t).
    """
    m = v = 0.0
    out = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        w -= lr * m_hat / (math.sqrt(v_hat) + eps / math.sqrt(1 - b2**t))
        out.append(w)
    return out


def test_adam_bias_correction_at_steps_1_2_10():
    # With a constant gradient g, m = (1 - b1^t) g and v = (1 - b2^t) g^2, so
    # step t moves w by  -lr g / (|g| + eps / sqrt(1 - b2^t)).  A large eps
    # makes the bias correction visible.
    lr, b1, b2, eps, g = 0.1, 0.9, 0.999, 0.5, 2.0
    values = run_steps(Adam(lr, b1, b2, epsilon=eps), make_param(0.0), [g] * 10)
    moves = -np.diff([0.0] + [v.item() for v in values])
    for t in (1, 2, 10):
        expected = lr * g / (g + eps / math.sqrt(1 - b2**t))
        assert moves[t - 1] == pytest.approx(expected, rel=1e-12)
    # Step 1: alpha_1 = 0.1 * sqrt(0.001) / 0.1, m = 0.2, v = 0.004
    assert moves[0] == pytest.approx(math.sqrt(0.001) * 0.2 / (math.sqrt(0.004) + 0.5), rel=1e-12)


def test_adam_matches_textbook_formula_on_varying_gradients():
    grads = [0.3, -1.2, 0.7, 2.0, -0.1, 0.0, 5.0, -3.0, 0.2, 1.0, -0.4]
    expected = adam_reference(grads, lr=0.01, b1=0.8, b2=0.99, eps=1e-3, w=1.0)
    values = run_steps(Adam(0.01, 0.8, 0.99, 1e-3), make_param(1.0), grads)
    np.testing.assert_allclose(values, expected, rtol=1e-12)


def test_adam_single_step_and_amsgrad_keras_golden_values():
    # From Keras's adam_test: the first step moves each weight by ~lr.
    p = make_param([1.0, 2.0, 3.0, 4.0], grad=[1.0, 6.0, 7.0, 2.0])
    Adam(learning_rate=0.5).apply_gradients([p])
    np.testing.assert_allclose(p.value, [0.5, 1.5, 2.5, 3.5], atol=1e-4)

    x = make_param(np.ones(10), dtype=np.float32)
    opt = Adam(amsgrad=True)
    run_steps(opt, x, [np.full(10, 0.01)])
    for expected in [0.999, 0.9982, 0.9974, 0.9965, 0.9955]:
        np.testing.assert_allclose(x.value, expected, atol=5e-4)
        run_steps(opt, x, [np.arange(1, 11) / 10])


def test_amsgrad_uses_running_max_of_v():
    # A large gradient then small ones: amsgrad keeps the large v, so it moves less.
    grads = [10.0, 0.1, 0.1, 0.1]
    plain = run_steps(Adam(0.1), make_param(0.0), grads)
    ams = run_steps(Adam(0.1, amsgrad=True), make_param(0.0), grads)
    assert plain[0] == ams[0]
    assert abs(ams[-1] - ams[0]) < abs(plain[-1] - plain[0])


# ---------------------------------------------------------------- clipping

def two_params():
    # gradient norms 5 and 1, global norm sqrt(26)
    return make_param([0.0, 0.0], grad=[3.0, 4.0]), make_param([0.0], grad=[1.0])


@pytest.mark.parametrize("option, expected_a, expected_b", [
    ({}, [3.0, 4.0], [1.0]),
    ({"clipnorm": 2.0}, [1.2, 1.6], [1.0]),                  # each by its own norm
    ({"global_clipnorm": 2.0}, [3 * 2 / math.sqrt(26), 4 * 2 / math.sqrt(26)],
     [2 / math.sqrt(26)]),                                   # both by the joint norm
    ({"clipvalue": 2.0}, [2.0, 2.0], [1.0]),                 # entry by entry
])
def test_clipping_options_differ(option, expected_a, expected_b):
    a, b = two_params()
    SGD(learning_rate=1.0, **option).apply_gradients([a, b])  # w = 0 - clipped g
    np.testing.assert_allclose(-a.value, expected_a, rtol=1e-12)
    np.testing.assert_allclose(-b.value, expected_b, rtol=1e-12)
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])          # grads left as they were


def test_two_clipping_options_raise():
    with pytest.raises(ValueError, match="clipnorm.*clipvalue.*global_clipnorm"):
        Adam(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="Only one"):
        SGD(clipnorm=1.0, global_clipnorm=1.0)


def test_zero_gradient_is_not_clipped_to_nan():
    p = make_param([1.0, 2.0], grad=[0.0, 0.0])
    for option in ({"clipnorm": 1.0}, {"global_clipnorm": 1.0}):
        SGD(1.0, **option).apply_gradients([p])
        np.testing.assert_array_equal(p.value, [1.0, 2.0])


@settings(max_examples=60, deadline=None)
@given(grads=st.lists(hnp.arrays(np.float64, st.integers(1, 6),
                                 elements=st.floats(-1e3, 1e3)), min_size=1, max_size=4),
       c=st.floats(0.01, 10.0))
def test_clipnorm_bounds_norms_and_keeps_directions(grads, c):
    for g, clipped in zip(grads, SGD(clipnorm=c).clip_gradients(grads)):
        norm = np.linalg.norm(g)
        assert np.linalg.norm(clipped) <= c * (1 + 1e-12)
        # same direction, shrunk by a factor in (0, 1]
        np.testing.assert_allclose(clipped * max(norm, c), g * c, atol=1e-9)
    total = math.sqrt(sum(np.sum(c_**2) for c_ in SGD(global_clipnorm=c).clip_gradients(grads)))
    assert total <= c * (1 + 1e-12)


# ---------------------------------------------------------------- base behaviour

def test_frozen_parameter_untouched_and_left_out_of_global_norm():
    frozen = make_param([5.0], grad=[100.0], trainable=False)
    live = make_param([0.0], grad=[1.0])
    opt = Adam(0.1, global_clipnorm=1.0)
    opt.apply_gradients([frozen, live])
    assert frozen.value[0] == 5.0
    assert frozen not in opt._slots
    # Alone, live's gradient norm 1 <= 1: no clipping, so Adam's first step is ~ -lr.
    assert live.value[0] == pytest.approx(-0.1 / (1 + 1e-7 / math.sqrt(1e-3)), rel=1e-12)


def test_a_step_with_nothing_to_train_is_not_counted():
    """As Keras's apply_gradients with no gradients: no update and ``iterations`` stays (schedules don't move)."""
    frozen = make_param([5.0], grad=[1.0], trainable=False)
    live = make_param([1.0], grad=[1.0])
    opt = Adam(learning_rate=0.1)
    opt.apply_gradients([])
    opt.apply_gradients([frozen])
    assert opt.iterations == 0 and frozen.value[0] == 5.0 and not opt._slots
    opt.apply_gradients([frozen, live])
    assert opt.iterations == 1 and live.value[0] != 1.0


def test_learning_rate_change_takes_effect():
    opt = SGD(learning_rate=0.1)
    p = make_param([1.0], grad=[1.0])
    opt.apply_gradients([p])
    opt.learning_rate = 0.01
    opt.apply_gradients([p])
    assert p.value[0] == pytest.approx(1.0 - 0.1 - 0.01)
    assert opt.iterations == 2


@pytest.mark.parametrize("bad", [-1e-3, float("nan"), float("inf")])
def test_learning_rate_must_be_finite_and_not_negative(bad):
    with pytest.raises(ValueError, match="finite number >= 0"):
        SGD(learning_rate=bad)
    opt = SGD()
    with pytest.raises(ValueError):
        opt.learning_rate = bad


@pytest.mark.parametrize("make", [lambda: SGD(0.0, momentum=0.9), lambda: Adam(0.0), lambda: RMSprop(0.0)])
def test_a_learning_rate_of_zero_leaves_the_weights_as_they_are(make):
    """As Keras accepts it: the steps are taken (the slots move, the iterations count) but the weights stay."""
    opt = make()
    p = make_param([1.0, -2.0], grad=[0.5, 0.25])
    for _ in range(3):
        opt.apply_gradients([p])
    np.testing.assert_array_equal(p.value, [1.0, -2.0])
    assert opt.iterations == 3


@pytest.mark.parametrize("opt", [SGD(0.1, momentum=0.9, nesterov=True),
                                 RMSprop(momentum=0.5, centered=True),
                                 Adam(amsgrad=True, clipnorm=0.5)])
def test_float32_stays_float32_and_updates_in_place(opt):
    p = make_param(np.linspace(-1, 1, 12).reshape(3, 4), dtype=np.float32)
    value = p.value
    for _ in range(3):
        p.grad[...] = np.cos(value)
        opt.apply_gradients([p])
    assert p.value is value and p.value.dtype == np.float32
    assert all(s.dtype == np.float32 for s in opt.get_slots(p).values())


@pytest.mark.parametrize("opt", [SGD(0.1, momentum=0.9), SGD(0.1, momentum=0.9, nesterov=True),
                                 RMSprop(momentum=0.5, centered=True), Adam(beta_2=0.9),
                                 Adam(beta_2=0.9, amsgrad=True)], ids=lambda o: type(o).__name__)
def test_state_of_a_weight_whose_gradient_stays_zero_reaches_zero(opt):
    """No subnormal number ever stays in an optimizer's state (they make every step slow).

    One step with a gradient, then 1,200 with none (a dead ReLU unit): each
    moment decays by its beta and must end at exactly 0, never resting below
    the smallest normal float32 on the way.
    """
    tiny = np.finfo(np.float32).tiny
    p = make_param([0.5, -2.0, 1.0], grad=[1e-2, -3e-3, 0.0], dtype=np.float32)
    opt.apply_gradients([p])
    p.grad[...] = 0
    for _ in range(1200):
        opt.apply_gradients([p])
        for name, slot in opt.get_slots(p).items():
            assert np.all((slot == 0) | (np.abs(slot) >= tiny)), (name, slot)
    decaying = {"momentum", "velocity", "average_gradient"}
    for name, slot in opt.get_slots(p).items():
        if name in decaying:
            np.testing.assert_array_equal(slot, 0, err_msg=name)


def test_slots_are_per_parameter_and_lazy():
    opt = Adam()
    a, b = make_param([1.0], grad=[1.0]), make_param([1.0, 2.0], grad=[1.0, 1.0])
    assert opt._slots == {}
    opt.apply_gradients([a, b])
    assert set(opt.get_slots(a)) == {"momentum", "velocity"}
    assert opt.get_slots(b)["momentum"].shape == (2,)
    assert not np.shares_memory(opt.get_slots(a)["momentum"], opt.get_slots(b)["momentum"])


# ---------------------------------------------------------------- get / config

@pytest.mark.parametrize("name, cls", [("sgd", SGD), ("Adam", Adam), ("RMSPROP", RMSprop)])
def test_get_by_name(name, cls):
    assert type(optimizers.get(name)) is cls


def test_get_errors_and_instances():
    with pytest.raises(ValueError, match="adam.*rmsprop.*sgd"):
        optimizers.get("lbfgs")
    with pytest.raises(TypeError):
        optimizers.get(3)
    opt = SGD()
    assert optimizers.get(opt) is opt


@pytest.mark.parametrize("opt", [SGD(0.05, momentum=0.9, nesterov=True, clipvalue=1.0),
                                 RMSprop(0.002, rho=0.8, centered=True),
                                 Adam(3e-4, beta_2=0.99, amsgrad=True, global_clipnorm=2.0)])
def test_config_round_trip_through_json(opt):
    text = json.dumps(optimizers.serialize(opt))
    clone = optimizers.get(json.loads(text))
    assert type(clone) is type(opt)
    assert clone.get_config() == opt.get_config()
    assert type(opt).from_config(opt.get_config()).get_config() == opt.get_config()
    # a bare get_config() dict works too, found by its (default) name
    assert optimizers.get(json.loads(json.dumps(opt.get_config()))).get_config() == \
        opt.get_config()


def test_get_rejects_dicts_it_cannot_resolve():
    with pytest.raises(ValueError, match="known optimizers"):
        optimizers.get({"class_name": "LossScaleOptimizer", "config": {}})
    with pytest.raises(ValueError, match="class_name"):
        optimizers.get({"learning_rate": 0.1})


def test_default_hyperparameters_as_keras():
    assert SGD().get_config() == {"name": "SGD", "learning_rate": 0.01, "weight_decay": None,
                                  "clipnorm": None, "clipvalue": None, "global_clipnorm": None,
                                  "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                                  "gradient_accumulation_steps": None, "momentum": 0.0, "nesterov": False}
    adam = Adam().get_config()
    assert (adam["learning_rate"], adam["beta_1"], adam["beta_2"], adam["epsilon"]) == \
        (0.001, 0.9, 0.999, 1e-7)
    rms = RMSprop().get_config()
    assert (rms["learning_rate"], rms["rho"], rms["epsilon"]) == (0.001, 0.9, 1e-7)


def test_base_class_requires_update_step():
    with pytest.raises(TypeError, match="update_step"):
        Optimizer(0.1)

    class NoStep(Optimizer):
        pass

    with pytest.raises(TypeError, match="update_step"):
        NoStep(0.1)


# ---------------------------------------------------------------- new update rules
#
# Each reference below is the Keras 3 formula written out plainly in float64,
# one step at a time (state in a dict), independent of nnscratch's in-place code.

def adagrad_reference(w, g, s, t, lr, initial_accumulator_value=0.1, epsilon=1e-7):
    a = s.get("a", np.full_like(w, initial_accumulator_value)) + g**2
    s["a"] = a
    return w - lr * g / np.sqrt(a + epsilon)


def adadelta_reference(w, g, s, t, lr, rho=0.95, epsilon=1e-7):
    acc_g = rho * s.get("g", 0.0) + (1 - rho) * g**2
    delta = -np.sqrt(s.get("d", 0.0) + epsilon) / np.sqrt(acc_g + epsilon) * g
    s["g"], s["d"] = acc_g, rho * s.get("d", 0.0) + (1 - rho) * delta**2
    return w + lr * delta


def adamax_reference(w, g, s, t, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    m = beta_1 * s.get("m", 0.0) + (1 - beta_1) * g
    u = np.maximum(beta_2 * s.get("u", 0.0), np.abs(g))
    s["m"], s["u"] = m, u
    return w - lr / (1 - beta_1**t) * m / (u + epsilon)


def nadam_reference(w, g, s, t, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    mu = [beta_1 * (1 - 0.5 * 0.96**i) for i in range(1, t + 2)]  # mu_1 .. mu_{t+1}
    m = beta_1 * s.get("m", 0.0) + (1 - beta_1) * g
    v = beta_2 * s.get("v", 0.0) + (1 - beta_2) * g**2
    s["m"], s["v"] = m, v
    m_hat = mu[t] * m / (1 - np.prod(mu[:t + 1])) + (1 - mu[t - 1]) * g / (1 - np.prod(mu[:t]))
    v_hat = v / (1 - beta_2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + epsilon)


def lion_reference(w, g, s, t, lr, beta_1=0.9, beta_2=0.99):
    m = s.get("m", 0.0)
    w = w - lr * np.sign(beta_1 * m + (1 - beta_1) * g)
    s["m"] = beta_2 * m + (1 - beta_2) * g
    return w


def lamb_reference(w, g, s, t, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    m = beta_1 * s.get("m", 0.0) + (1 - beta_1) * g
    v = beta_2 * s.get("v", 0.0) + (1 - beta_2) * g**2
    s["m"], s["v"] = m, v
    u = (m / (1 - beta_1**t)) / (np.sqrt(v / (1 - beta_2**t)) + epsilon)
    w_norm, u_norm = np.linalg.norm(w), np.linalg.norm(u)
    ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
    return w - lr * ratio * u


def ftrl_reference(w, g, s, t, lr, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                   l1_regularization_strength=0.0, l2_regularization_strength=0.0,
                   l2_shrinkage_regularization_strength=0.0, beta=0.0):
    n = s.get("n", np.full_like(w, initial_accumulator_value))
    z = s.get("z", np.zeros_like(w))
    n_new = n + g**2
    sigma = (n_new ** -learning_rate_power - n ** -learning_rate_power) / lr
    z = z + g + 2 * l2_shrinkage_regularization_strength * w - sigma * w
    l1, l2 = l1_regularization_strength, l2_regularization_strength + beta / (2 * lr)
    s["n"], s["z"] = n_new, z
    return np.where(np.abs(z) <= l1, 0.0, (np.sign(z) * l1 - z) / (n_new ** -learning_rate_power / lr + 2 * l2))


def adafactor_reference(w, g, s, t, lr, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3, clip_threshold=1.0,
                        relative_step=True):
    rms = lambda a: np.sqrt(np.mean(a ** 2))      # noqa: E731
    rho = min(lr, 1 / np.sqrt(t))
    alpha = max(epsilon_2, rms(w)) * rho
    squared, beta = g ** 2 + epsilon_1, 1 - t ** beta_2_decay
    if w.ndim >= 2:
        r = beta * s.get("r", 0.0) + (1 - beta) * squared.mean(axis=-1)
        c = beta * s.get("c", 0.0) + (1 - beta) * squared.mean(axis=-2)
        s["r"], s["c"] = r, c
        v = np.einsum("...i,...j->...ij", r / r.mean(axis=-1, keepdims=True), c)     # the row times the column
    else:
        v = s["v"] = beta * s.get("v", 0.0) + (1 - beta) * squared
    u = g / np.sqrt(v)
    return w - alpha * u / max(1.0, rms(u) / clip_threshold)


def adam_step_reference(w, g, s, t, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    m = beta_1 * s.get("m", 0.0) + (1 - beta_1) * g
    v = beta_2 * s.get("v", 0.0) + (1 - beta_2) * g**2
    s["m"], s["v"] = m, v
    return w - lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (np.sqrt(v) + epsilon)


def reference_run(step, w, grads, lr, weight_decay=None, **hyper):
    """Values after each step of ``step``; decoupled weight decay first, as Keras."""
    state, out = {}, []
    for t, g in enumerate(grads, start=1):
        if weight_decay is not None:
            w = w - w * lr * weight_decay
        w = step(w, g, state, t, lr, **hyper)
        out.append(w)
    return out


# class, its reference, a strategy of its hyperparameters (beyond the learning rate)
NEW_RULES = {
    "Adagrad": (optimizers.Adagrad, adagrad_reference,
                st.fixed_dictionaries({"initial_accumulator_value": st.sampled_from([0.0, 0.1, 1.0]),
                                       "epsilon": st.sampled_from([1e-7, 1e-3])})),
    "Adadelta": (optimizers.Adadelta, adadelta_reference,
                 st.fixed_dictionaries({"rho": st.floats(0.5, 0.99), "epsilon": st.sampled_from([1e-7, 1e-3])})),
    "Adamax": (optimizers.Adamax, adamax_reference,
               st.fixed_dictionaries({"beta_1": st.floats(0.0, 0.95), "beta_2": st.floats(0.5, 0.999),
                                      "epsilon": st.sampled_from([1e-7, 1e-3])})),
    "Nadam": (optimizers.Nadam, nadam_reference,
              st.fixed_dictionaries({"beta_1": st.floats(0.0, 0.95), "beta_2": st.floats(0.5, 0.999),
                                     "epsilon": st.sampled_from([1e-7, 1e-3])})),
    "Lion": (optimizers.Lion, lion_reference,
             st.fixed_dictionaries({"beta_1": st.floats(0.05, 1.0), "beta_2": st.floats(0.0, 0.999)})),
    "Lamb": (optimizers.Lamb, lamb_reference,
             st.fixed_dictionaries({"beta_1": st.floats(0.0, 0.95), "beta_2": st.floats(0.5, 0.999),
                                    "epsilon": st.sampled_from([1e-7, 1e-3])})),
    "Ftrl": (optimizers.Ftrl, ftrl_reference,
             st.fixed_dictionaries({"learning_rate_power": st.sampled_from([-0.5, -0.3, 0.0]),
                                    "initial_accumulator_value": st.sampled_from([0.1, 1.0]),
                                    "l1_regularization_strength": st.sampled_from([0.0, 0.05]),
                                    "l2_regularization_strength": st.sampled_from([0.0, 0.2]),
                                    "l2_shrinkage_regularization_strength": st.sampled_from([0.0, 0.1]),
                                    "beta": st.sampled_from([0.0, 0.5])})),
    "Adafactor": (optimizers.Adafactor, adafactor_reference,
                  st.fixed_dictionaries({"beta_2_decay": st.sampled_from([-0.8, -0.5]),
                                         "epsilon_2": st.sampled_from([1e-3, 1e-1]),
                                         "clip_threshold": st.sampled_from([1.0, 0.3]),
                                         "relative_step": st.booleans()})),
    "AdamW": (optimizers.AdamW, adam_step_reference,
              st.fixed_dictionaries({"beta_1": st.floats(0.0, 0.95), "beta_2": st.floats(0.5, 0.999),
                                     "epsilon": st.sampled_from([1e-7, 1e-3])})),
}


@pytest.mark.parametrize("name", sorted(NEW_RULES))
@settings(max_examples=15)
@given(data=st.data(), shape=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple),
       lr=st.floats(1e-4, 0.5), steps=st.integers(1, 5), seed=rng_seeds())
def test_new_rules_match_the_keras_formula(name, data, shape, lr, steps, seed):
    cls, reference, hyper_strategy = NEW_RULES[name]
    hyper = data.draw(hyper_strategy)
    weight_decay = 0.004 if cls is optimizers.AdamW else None  # AdamW's default decay is part of its rule
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal(shape)
    grads = [rng.standard_normal(shape) * 10.0 ** rng.uniform(-2, 1) for _ in range(steps)]
    expected = reference_run(reference, w0, grads, lr, weight_decay=weight_decay, **hyper)
    values = run_steps(cls(learning_rate=lr, **hyper), make_param(w0), grads)
    for got, want in zip(values, expected):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_adagrad_keras_docstring_example_by_hand():
    # one step from w = 1, g = 2: a = 0.1 + 4, w = 1 - 0.1 * 2 / sqrt(4.1 + 1e-7)
    p = make_param([1.0], grad=[2.0])
    optimizers.Adagrad(learning_rate=0.1).apply_gradients([p])
    assert p.value[0] == pytest.approx(1 - 0.2 / math.sqrt(4.1 + 1e-7), rel=1e-14)


def test_nadam_first_step_by_hand():
    # t = 1: mu_1 = 0.9 (1 - 0.48) = 0.468, mu_2 = 0.9 (1 - 0.5 * 0.9216) = 0.48528;
    # m = 0.1 g, v = 0.001 g^2, m_hat = mu_2 0.1 g / (1 - mu_1 mu_2) + (1 - mu_1) g / (1 - mu_1)
    g, lr = 3.0, 0.01
    mu_1, mu_2 = 0.468, 0.48528
    m_hat = mu_2 * 0.1 * g / (1 - mu_1 * mu_2) + g
    expected = 1.0 - lr * m_hat / (abs(g) + 1e-7)
    p = make_param([1.0], grad=[g])
    optimizers.Nadam(learning_rate=lr).apply_gradients([p])
    assert p.value[0] == pytest.approx(expected, rel=1e-12)


def test_nadam_momentum_product_is_recomputed_after_the_step_count_changes():
    opt = optimizers.Nadam()
    assert opt.momentum_product(3) == pytest.approx(np.prod([0.9 * (1 - 0.5 * 0.96**i) for i in (1, 2, 3)]))
    opt.momentum_product(10)
    assert opt.momentum_product(2) == pytest.approx(0.9 * 0.52 * 0.9 * (1 - 0.5 * 0.9216), rel=1e-14)


def test_lamb_moves_each_array_by_the_learning_rate_times_its_norm():
    """The trust ratio ||w|| / ||u||: the step's norm is lr ||w||, however large the gradient."""
    for scale in (1e-3, 1.0, 1e3):
        p = make_param([3.0, -4.0], grad=[scale * 2.0, scale * 0.5])
        optimizers.Lamb(learning_rate=0.1).apply_gradients([p])
        assert np.linalg.norm(p.value - [3.0, -4.0]) == pytest.approx(0.1 * 5.0, rel=1e-9)


def test_ftrl_with_a_large_l1_penalty_keeps_small_weights_at_exactly_zero():
    """While |z| <= l1 the closed-form weight is 0: FTRL gives sparse weights."""
    p = make_param([0.7, -0.2, 0.1])
    opt = optimizers.Ftrl(learning_rate=0.1, l1_regularization_strength=0.5)
    for g in ([0.3, 2.0, -0.1], [0.1, 1.5, 0.05]):
        p.grad[...] = g
        opt.apply_gradients([p])
    assert p.value[0] == 0.0 and p.value[2] == 0.0 and p.value[1] < 0


def test_adafactor_keeps_a_row_and_a_column_of_second_moments_for_a_kernel():
    """A (3, 4, 5) kernel: r (3, 4) and c (3, 5) instead of Adam's 60 values; a bias keeps its v."""
    opt = optimizers.Adafactor()
    kernel, bias = make_param(np.ones((3, 4, 5)), grad=np.ones((3, 4, 5))), make_param(np.ones(5), grad=np.ones(5))
    opt.apply_gradients([kernel, bias])
    assert {name: slot.shape for name, slot in opt.get_slots(kernel).items()} == {"r": (3, 4), "c": (3, 5),
                                                                                 "v": (3, 4, 5)}
    assert {name: slot.shape for name, slot in opt.get_slots(bias).items()} == {"r": (), "c": (), "v": (5,)}
    meta, arrays = opt.get_state([kernel, bias])
    clone = optimizers.Adafactor()
    clone.set_state([kernel, bias], meta, arrays)
    assert all(np.array_equal(a, b) for a, b in zip(clone.get_state([kernel, bias])[1], arrays))
    with pytest.raises(ValueError, match=r"saved slot 'r' .* expected float64 \(3, 4\)"):
        clone.set_state([kernel, bias], meta, [np.zeros((3, 4, 5))] + arrays[1:])


def test_lion_moves_every_weight_by_the_learning_rate():
    p = make_param([1.0, 1.0, 1.0], grad=[1e-6, -50.0, 0.0])
    optimizers.Lion(learning_rate=0.25).apply_gradients([p])
    np.testing.assert_array_equal(p.value, [0.75, 1.25, 1.0])


# ---------------------------------------------------------------- weight decay

ALL_OPTIMIZERS = [
    lambda **kw: SGD(**kw), lambda **kw: SGD(momentum=0.9, nesterov=True, **kw),
    lambda **kw: RMSprop(momentum=0.5, centered=True, **kw), lambda **kw: Adam(**kw),
    lambda **kw: Adam(amsgrad=True, **kw), lambda **kw: optimizers.AdamW(**kw),
    lambda **kw: optimizers.Adagrad(**kw), lambda **kw: optimizers.Adadelta(**kw),
    lambda **kw: optimizers.Adamax(**kw), lambda **kw: optimizers.Nadam(**kw),
    lambda **kw: optimizers.Lion(**kw), lambda **kw: optimizers.Lamb(**kw), lambda **kw: optimizers.Adafactor(**kw),
]
ALL_IDS = ["sgd", "nesterov", "rmsprop", "adam", "amsgrad", "adamw", "adagrad", "adadelta", "adamax",
           "nadam", "lion", "lamb", "adafactor"]
# (Ftrl is left out of the lists of rules above: its weight is recomputed from its linear term each step, so a
# zero gradient sets a weight to 0, and it divides by the learning rate; tests of its own below.)


@pytest.mark.parametrize("make", ALL_OPTIMIZERS, ids=ALL_IDS)
def test_weight_decay_alone_shrinks_every_weight_geometrically(make):
    """With zero gradients every update rule moves nothing, so only the decay acts: w (1 - lr wd)^t."""
    p = make_param([2.0, -3.0, 0.5])
    opt = make(learning_rate=0.1, weight_decay=0.2)
    for _ in range(4):
        opt.apply_gradients([p])
    np.testing.assert_allclose(p.value, np.array([2.0, -3.0, 0.5]) * (1 - 0.1 * 0.2) ** 4, rtol=1e-14)


@pytest.mark.parametrize("make", ALL_OPTIMIZERS, ids=ALL_IDS)
def test_weight_decay_comes_before_the_update_with_the_steps_learning_rate(make):
    """Keras's order: w <- w - lr wd w, then the optimizer's step from the (unchanged) gradient.

    The rate comes from a schedule, so the decay must use the rate of its own step.
    """
    grads = [np.array([0.3, -1.2]), np.array([0.7, 2.0]), np.array([-0.1, 0.5])]
    rate = optimizers.schedules.PiecewiseConstantDecay([0, 1], [0.1, 0.05, 0.02])
    decayed = make(learning_rate=rate, weight_decay=0.3)
    plain = make(learning_rate=rate, weight_decay=None if not isinstance(decayed, optimizers.AdamW) else 0.0)
    a, b = make_param([1.0, -2.0]), make_param([1.0, -2.0])
    for step, g in enumerate(grads):
        b.value -= b.value * rate(step) * 0.3      # the decay by hand ...
        run_steps(plain, b, [g])                   # ... then the same rule without it
        run_steps(decayed, a, [g])
        np.testing.assert_allclose(a.value, b.value, rtol=1e-13)


def test_exclude_from_weight_decay_by_name_and_by_parameter():
    kernel, bias, gamma = make_param([1.0]), make_param([1.0]), make_param([1.0])
    bias.name, gamma.name = "bias", "gamma"
    opt = SGD(learning_rate=0.5, weight_decay=0.2)   # zero gradients: only the decay moves
    opt.exclude_from_weight_decay(var_names=["bias"])
    opt.apply_gradients([kernel, bias, gamma])
    assert (kernel.value[0], bias.value[0], gamma.value[0]) == (0.9, 1.0, 0.9)
    opt.exclude_from_weight_decay(var_list=[kernel], var_names=["gam"])  # replaces the earlier choice
    opt.apply_gradients([kernel, bias, gamma])
    assert (kernel.value[0], bias.value[0], gamma.value[0]) == (0.9, 0.9, 0.9)
    with pytest.raises(TypeError, match="Parameter"):
        opt.exclude_from_weight_decay(var_list=[np.zeros(2)])
    with pytest.raises(TypeError, match="strings"):
        opt.exclude_from_weight_decay(var_names=[3])


def test_weight_decay_leaves_frozen_parameters_alone():
    frozen = make_param([1.0], trainable=False)
    SGD(learning_rate=0.5, weight_decay=0.2).apply_gradients([frozen])
    assert frozen.value[0] == 1.0


def test_adamw_defaults_as_keras():
    config = optimizers.AdamW().get_config()
    assert (config["learning_rate"], config["weight_decay"], config["beta_1"], config["beta_2"],
            config["epsilon"], config["amsgrad"]) == (0.001, 0.004, 0.9, 0.999, 1e-7, False)
    assert optimizers.Adam().weight_decay is None
    with pytest.raises(ValueError, match="weight_decay.*None"):
        optimizers.AdamW(weight_decay=None)


@pytest.mark.parametrize("make", ALL_OPTIMIZERS, ids=ALL_IDS)
@pytest.mark.parametrize("bad", [-0.01, float("nan"), float("inf")])
def test_weight_decay_must_be_finite_and_not_negative(make, bad):
    with pytest.raises(ValueError, match="weight_decay"):
        make(weight_decay=bad)


# ---------------------------------------------------------------- arguments of the new optimizers

@pytest.mark.parametrize("make, match", [
    (lambda: Adam(beta_1=1.0), "beta_1"), (lambda: Adam(beta_2=-0.1), "beta_2"),
    (lambda: Adam(epsilon=-1e-7), "epsilon"), (lambda: RMSprop(rho=1.5), "rho"),
    (lambda: RMSprop(momentum=-0.5), "momentum"),
    (lambda: optimizers.Adagrad(initial_accumulator_value=-0.1), "initial_accumulator_value"),
    (lambda: optimizers.Adagrad(epsilon=float("nan")), "epsilon"),
    (lambda: optimizers.Adadelta(rho=1.01), "rho"), (lambda: optimizers.Adamax(beta_1=1.0), "beta_1"),
    (lambda: optimizers.Adamax(beta_2=1.5), "beta_2"), (lambda: optimizers.Nadam(beta_1=-0.1), "beta_1"),
    (lambda: optimizers.Nadam(beta_2=1.0), "beta_2"), (lambda: optimizers.Lion(beta_1=0.0), r"\(0, 1\]"),
    (lambda: optimizers.Lion(beta_1=1.5), "beta_1"), (lambda: optimizers.Lion(beta_2=2.0), "beta_2"),
    (lambda: optimizers.Nadam(learning_rate=-1.0), "learning_rate"),
    (lambda: optimizers.Lamb(beta_1=1.0), "beta_1"), (lambda: optimizers.Lamb(epsilon=-1.0), "epsilon"),
    (lambda: optimizers.Ftrl(learning_rate_power=0.5), "learning_rate_power"),
    (lambda: optimizers.Ftrl(initial_accumulator_value=-0.1), "initial_accumulator_value"),
    (lambda: optimizers.Ftrl(l1_regularization_strength=-1.0), "l1_regularization_strength"),
    (lambda: optimizers.Ftrl(l2_shrinkage_regularization_strength=-1.0), "l2_shrinkage"),
    (lambda: optimizers.Adafactor(beta_2_decay=0.5), "beta_2_decay"),
    (lambda: optimizers.Adafactor(clip_threshold=0.0), "clip_threshold"),
])
def test_bad_hyperparameters_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("make", ALL_OPTIMIZERS[5:], ids=ALL_IDS[5:])
def test_new_optimizers_keep_float32_and_update_in_place(make):
    opt = make(learning_rate=0.01)
    p = make_param(np.linspace(-1, 1, 12).reshape(3, 4), dtype=np.float32)
    value = p.value
    for _ in range(3):
        p.grad[...] = np.cos(value)
        opt.apply_gradients([p])
    assert p.value is value and p.value.dtype == np.float32
    assert all(s.dtype == np.float32 for s in opt.get_slots(p).values())


@pytest.mark.parametrize("make", ALL_OPTIMIZERS[6:], ids=ALL_IDS[6:])
def test_new_optimizers_with_a_learning_rate_of_zero_leave_the_weights(make):
    opt = make(learning_rate=0.0)
    p = make_param([1.0, -2.0], grad=[0.5, 0.25])
    for _ in range(3):
        opt.apply_gradients([p])
    np.testing.assert_array_equal(p.value, [1.0, -2.0])


@pytest.mark.parametrize("opt", [optimizers.Adagrad(), optimizers.Adadelta(rho=0.9),
                                 optimizers.Adamax(beta_2=0.9), optimizers.Nadam(beta_2=0.9),
                                 optimizers.Lion(beta_2=0.9), optimizers.Lamb(beta_2=0.9)],
                         ids=lambda o: type(o).__name__)
def test_state_of_the_new_optimizers_reaches_zero_without_subnormals(opt):
    """As for Adam: decaying state never rests on a subnormal float32 and ends at exactly 0."""
    tiny = np.finfo(np.float32).tiny
    p = make_param([0.5, -2.0, 1.0], grad=[1e-2, -3e-3, 0.0], dtype=np.float32)
    opt.apply_gradients([p])
    p.grad[...] = 0
    for _ in range(1500):
        opt.apply_gradients([p])
        for name, slot in opt.get_slots(p).items():
            assert np.all((slot == 0) | (np.abs(slot) >= tiny)), (name, slot)
    for name, slot in opt.get_slots(p).items():
        if name != "accumulator":  # Adagrad's sum of squares only grows
            np.testing.assert_array_equal(slot, 0, err_msg=name)


@pytest.mark.parametrize("name, cls", [("adamw", optimizers.AdamW), ("Adagrad", optimizers.Adagrad),
                                       ("ADADELTA", optimizers.Adadelta), ("adamax", optimizers.Adamax),
                                       ("nadam", optimizers.Nadam), ("lion", optimizers.Lion),
                                       ("Lamb", optimizers.Lamb), ("ftrl", optimizers.Ftrl),
                                       ("adafactor", optimizers.Adafactor)])
def test_get_new_optimizers_by_name(name, cls):
    assert type(optimizers.get(name)) is cls


@pytest.mark.parametrize("opt", [
    optimizers.AdamW(3e-4, weight_decay=0.01, amsgrad=True),
    optimizers.Adagrad(0.05, initial_accumulator_value=0.5, epsilon=1e-6, clipnorm=1.0),
    optimizers.Adadelta(1.0, rho=0.9, weight_decay=0.001),
    optimizers.Adamax(0.002, beta_1=0.8, global_clipnorm=3.0),
    optimizers.Nadam(0.002, beta_2=0.99, clipvalue=0.5),
    optimizers.Lion(1e-4, beta_1=0.95, beta_2=0.98, weight_decay=0.1),
    optimizers.Lamb(0.002, beta_1=0.85, epsilon=1e-6, weight_decay=0.01),
    optimizers.Ftrl(0.05, learning_rate_power=-0.3, l1_regularization_strength=0.01, beta=0.2, clipnorm=1.0),
    optimizers.Adafactor(0.01, beta_2_decay=-0.5, epsilon_2=1e-2, clip_threshold=0.5, relative_step=False),
    Adam(0.01, gradient_accumulation_steps=4),
    SGD(0.01, use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=10),
    SGD(optimizers.schedules.CosineDecay(0.1, 100, warmup_target=0.2, warmup_steps=10), momentum=0.9),
], ids=lambda o: type(o).__name__)
def test_new_configs_round_trip_through_json(opt):
    text = json.dumps(optimizers.serialize(opt))
    clone = optimizers.get(json.loads(text))
    assert type(clone) is type(opt) and clone.get_config() == opt.get_config()
    assert clone.learning_rate == opt.learning_rate
    # Keras's default names ("adam_w", ...) find their class too
    config = dict(opt.get_config(), name={"AdamW": "adam_w"}.get(type(opt).__name__, opt.name))
    assert type(optimizers.get(config)) is type(opt)


# ---------------------------------------------------------------- gradient accumulation

def test_gradient_accumulation_updates_every_k_calls_with_the_mean_gradient():
    grads = [np.array([0.3, -1.2]), np.array([0.7, 2.0]), np.array([-0.1, 0.5]), np.array([1.0, 1.0])]
    p = make_param([1.0, -2.0])
    opt = SGD(learning_rate=0.5, gradient_accumulation_steps=3)
    for call, g in enumerate(grads[:3], start=1):
        p.grad[...] = g
        opt.apply_gradients([p])
        if call < 3:
            np.testing.assert_array_equal(p.value, [1.0, -2.0])
            assert opt.iterations == 0
    np.testing.assert_allclose(p.value, np.array([1.0, -2.0]) - 0.5 * (grads[0] + grads[1] + grads[2]) / 3,
                               rtol=1e-15)
    assert opt.iterations == 1
    np.testing.assert_array_equal(opt.get_slots(p)["gradient_accumulator"], 0)


@pytest.mark.parametrize("make", ALL_OPTIMIZERS, ids=ALL_IDS)
def test_accumulating_k_gradients_is_one_step_of_their_mean(make):
    """Every rule, with decay and clipping: k accumulated calls equal one call of the plain rule with the mean."""
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(4) for _ in range(6)]
    accumulating = make(learning_rate=0.05, weight_decay=0.1, global_clipnorm=1.0, gradient_accumulation_steps=2)
    plain = make(learning_rate=0.05, weight_decay=0.1, global_clipnorm=1.0)
    a, b = make_param(np.linspace(-1, 1, 4)), make_param(np.linspace(-1, 1, 4))
    run_steps(accumulating, a, grads)
    run_steps(plain, b, [(grads[i + 1] + grads[i]) / 2 for i in range(0, 6, 2)])
    np.testing.assert_allclose(a.value, b.value, rtol=1e-12, atol=1e-15)
    assert accumulating.iterations == plain.iterations == 3


def test_with_accumulation_a_schedule_sees_every_call():
    """As Keras: the rate of an update is the schedule's at the call that makes it (calls 2 and 4 here)."""
    rate = optimizers.schedules.PiecewiseConstantDecay([0, 1, 2, 3], [1.0, 0.1, 0.01, 0.001, 0.0001])
    p = make_param([0.0], grad=[1.0])
    opt = SGD(learning_rate=rate, gradient_accumulation_steps=2)
    opt.apply_gradients([p])
    opt.apply_gradients([p])
    assert p.value[0] == pytest.approx(-0.1)
    opt.apply_gradients([p])
    opt.apply_gradients([p])
    assert p.value[0] == pytest.approx(-0.1 - 0.001)


@pytest.mark.parametrize("bad", [1, 0, 2.5, True, "2"])
def test_gradient_accumulation_steps_must_be_an_integer_of_at_least_2(bad):
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        Adam(gradient_accumulation_steps=bad)


# ---------------------------------------------------------------- moving average of the weights

def test_use_ema_keeps_the_moving_average_of_each_weight_after_its_update():
    grads = [np.array([0.3, -1.2]), np.array([0.7, 2.0]), np.array([-0.1, 0.5])]
    p = make_param([1.0, -2.0])
    opt = SGD(learning_rate=0.5, use_ema=True, ema_momentum=0.9)
    expected = None
    for g in grads:
        p.grad[...] = g
        opt.apply_gradients([p])
        expected = p.value.copy() if expected is None else 0.9 * expected + 0.1 * p.value   # (the first: a copy)
        np.testing.assert_allclose(opt.get_slots(p)["average"], expected, rtol=1e-14)
    raw = p.value.copy()
    opt.finalize_variable_values([p])
    np.testing.assert_array_equal(p.value, opt.get_slots(p)["average"])
    assert not np.allclose(raw, expected)


def test_ema_overwrite_frequency_puts_the_averages_in_the_weights_every_so_many_steps():
    p = make_param([1.0])
    opt = SGD(learning_rate=0.1, use_ema=True, ema_momentum=0.5, ema_overwrite_frequency=2)
    p.grad[...] = [1.0]
    opt.apply_gradients([p])                          # w = 0.9, a = 0.9 (a copy)
    opt.apply_gradients([p])                          # w = 0.8, a = 0.85, and then w = a
    assert p.value[0] == pytest.approx(0.85) and opt.get_slots(p)["average"][0] == pytest.approx(0.85)
    opt.apply_gradients([p])                          # w = 0.75, a = 0.8: no overwrite at step 3
    assert p.value[0] == pytest.approx(0.75)


def test_fit_ends_with_the_weights_set_to_their_moving_averages():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 3)).astype(np.float32), rng.integers(0, 2, 40)
    model = nnscratch.Sequential([nnscratch.Input((3,)), nnscratch.layers.Dense(2, activation="softmax")])
    model.compile(Adam(0.05, use_ema=True, ema_momentum=0.8), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    for p in model.parameters():
        np.testing.assert_array_equal(p.value, model.optimizer.get_slots(p)["average"])


@pytest.mark.parametrize("make, match", [(lambda: Adam(use_ema=True, ema_momentum=1.5), "ema_momentum"),
                                         (lambda: Adam(use_ema=True, ema_overwrite_frequency=0),
                                          "ema_overwrite_frequency")])
def test_bad_ema_arguments_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()
