"""Learning-rate schedules: values against their formulas, errors, saving, and their use by optimizers."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch import optimizers
from nnscratch.callbacks import ReduceLROnPlateau
from nnscratch.layers import Dense
from nnscratch.optimizers import SGD, schedules
from nnscratch.optimizers.schedules import (
    CosineDecay,
    CosineDecayRestarts,
    ExponentialDecay,
    InverseTimeDecay,
    LearningRateSchedule,
    PiecewiseConstantDecay,
    PolynomialDecay,
)
from nnscratch.parameter import Parameter

steps = st.integers(0, 500)
rates = st.floats(1e-5, 1.0)
decay_steps = st.one_of(st.integers(1, 200), st.floats(0.5, 200.0))


# ---------------------------------------------------------------- values against the formulas

@given(step=steps, lr=rates, t=decay_steps, r=st.floats(0.0, 1.5), staircase=st.booleans())
def test_exponential_decay(step, lr, t, r, staircase):
    p = np.floor(step / t) if staircase else step / t
    assert ExponentialDecay(lr, t, r, staircase=staircase)(step) == pytest.approx(lr * r**p, rel=1e-12, abs=1e-300)


def test_exponential_decay_staircase_by_hand():
    schedule = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert [schedule(s) for s in (0, 9, 10, 19, 20, 35)] == [0.1, 0.1, 0.05, 0.05, 0.025, 0.0125]
    smooth = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert smooth(5) == pytest.approx(0.1 * 0.5**0.5)


@given(step=steps, lr=rates, t=decay_steps, r=st.floats(0.0, 5.0), staircase=st.booleans())
def test_inverse_time_decay(step, lr, t, r, staircase):
    p = np.floor(step / t) if staircase else step / t
    assert InverseTimeDecay(lr, t, r, staircase=staircase)(step) == pytest.approx(lr / (1 + r * p), rel=1e-12)


@given(step=steps, lr=rates, end=st.floats(0.0, 1e-3), t=decay_steps, power=st.floats(0.0, 3.0),
       cycle=st.booleans())
def test_polynomial_decay(step, lr, end, t, power, cycle):
    if cycle:
        period = t * max(1, math.ceil(step / t))
        fraction = step / period
    else:
        fraction = min(step, t) / t
    expected = (lr - end) * (1 - fraction) ** power + end
    got = PolynomialDecay(lr, t, end, power=power, cycle=cycle)(step)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_polynomial_decay_by_hand():
    linear = PolynomialDecay(1.0, decay_steps=10, end_learning_rate=0.1)
    assert [linear(s) for s in (0, 5, 10, 50)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    cyclic = PolynomialDecay(1.0, decay_steps=10, end_learning_rate=0.0, cycle=True)
    # step 15: period 20, fraction 0.75; step 10: period 10, the end; step 0: period 10
    assert [cyclic(s) for s in (0, 10, 11, 15, 20)] == pytest.approx([1.0, 0.0, 0.45, 0.25, 0.0])


@given(step=steps, lr=rates, t=decay_steps, alpha=st.floats(0.0, 1.0))
def test_cosine_decay(step, lr, t, alpha):
    s = min(step, t)
    expected = lr * ((1 - alpha) * 0.5 * (1 + np.cos(np.pi * s / t)) + alpha)
    assert CosineDecay(lr, t, alpha=alpha)(step) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@given(step=steps, lr=st.floats(0.0, 0.1), target=rates, warmup=st.integers(0, 100), t=decay_steps,
       alpha=st.floats(0.0, 1.0))
def test_cosine_decay_with_warmup(step, lr, target, warmup, t, alpha):
    step_capped = min(step, t + warmup)
    if step_capped < warmup:
        expected = lr + (target - lr) * step_capped / warmup
    else:
        s = step_capped - warmup
        expected = target * ((1 - alpha) * 0.5 * (1 + np.cos(np.pi * s / t)) + alpha)
    got = CosineDecay(lr, t, alpha=alpha, warmup_target=target, warmup_steps=warmup)(step)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_cosine_decay_by_hand():
    schedule = CosineDecay(0.0, decay_steps=10, warmup_target=1.0, warmup_steps=4)
    assert [schedule(s) for s in (0, 2, 4, 9, 14, 100)] == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.0, 0.0])


def sgdr_by_hand(lr, first, t_mul, m_mul, alpha, step):
    """SGDR's rate found by walking the periods one by one (no logarithm)."""
    start, length, restart = 0.0, float(first), 0
    while step >= start + length:
        start, length, restart = start + length, length * t_mul, restart + 1
    cosine = 0.5 * m_mul ** restart * (1 + math.cos(math.pi * (step - start) / length))
    return lr * ((1 - alpha) * cosine + alpha)


@given(lr=rates, first=st.integers(1, 30), t_mul=st.sampled_from([1.0, 1.5, 2.0, 3.0]),
       m_mul=st.sampled_from([1.0, 0.8]), alpha=st.sampled_from([0.0, 0.1]), step=steps)
def test_cosine_decay_restarts_against_the_periods_walked_by_hand(lr, first, t_mul, m_mul, alpha, step):
    expected = sgdr_by_hand(lr, first, t_mul, m_mul, alpha, step)
    got = CosineDecayRestarts(lr, first, t_mul=t_mul, m_mul=m_mul, alpha=alpha)(step)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_cosine_decay_restarts_restarts_at_the_end_of_each_period():
    """T0 = 3, t_mul = 3: periods of 3, 9, 27, 81, 243 steps; step 363 = 3 + 9 + 27 + 81 + 243 starts period 5
    (where log(243) / log(3) rounds below 5 in float64)."""
    schedule = CosineDecayRestarts(1.0, 3, t_mul=3.0, m_mul=0.5)
    assert [schedule.period(step)[0] for step in (0, 2, 3, 11, 12, 38, 39, 119, 120, 362, 363)] == \
        [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5]
    assert schedule(363) == pytest.approx(0.5 ** 5) and schedule(362) < 1e-3 * 0.5 ** 4
    shrinking = CosineDecayRestarts(1.0, 4.5, t_mul=0.5)            # periods of 4.5, 2.25, ...: 9 steps in all
    assert shrinking(8) > 0
    with pytest.raises(ValueError, match="add up to 9 steps, and step 9 is past them"):
        shrinking(9)


def test_piecewise_constant_keras_boundaries():
    """A boundary step still gets the value before it (Keras: values[i] while step <= boundaries[i])."""
    schedule = PiecewiseConstantDecay([100, 110], [1.0, 0.5, 0.1])
    assert [schedule(s) for s in (0, 100, 101, 110, 111, 10**6)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]


@given(data=st.data(), n=st.integers(1, 6))
def test_piecewise_constant_against_searchsorted(data, n):
    boundaries = sorted(data.draw(st.lists(st.integers(0, 300), min_size=n, max_size=n, unique=True)))
    values = data.draw(st.lists(st.floats(0.0, 1.0), min_size=n + 1, max_size=n + 1))
    step = data.draw(steps)
    schedule = PiecewiseConstantDecay(boundaries, values)
    assert schedule(step) == values[np.searchsorted(boundaries, step, side="left")]


# ---------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("make, error, match", [
    (lambda: ExponentialDecay(0.1, 0, 0.5), ValueError, "decay_steps"),
    (lambda: InverseTimeDecay(0.1, -3, 0.5), ValueError, "decay_steps"),
    (lambda: PolynomialDecay(0.1, 0), ValueError, "decay_steps"),
    (lambda: CosineDecay(0.1, 0), ValueError, "decay_steps"),
    (lambda: ExponentialDecay(-0.1, 10, 0.5), ValueError, "initial_learning_rate"),
    (lambda: ExponentialDecay(0.1, 10, -0.5), ValueError, "decay_rate"),
    (lambda: InverseTimeDecay(0.1, 10, -1.0), ValueError, "decay_rate"),
    (lambda: PolynomialDecay(0.1, 10, end_learning_rate=-1e-3), ValueError, "end_learning_rate"),
    (lambda: PolynomialDecay(0.1, 10, power=-1.0), ValueError, "power"),
    (lambda: CosineDecay(0.1, 10, alpha=-0.1), ValueError, "alpha"),
    (lambda: CosineDecay(0.1, 10, warmup_target=-1.0, warmup_steps=5), ValueError, "warmup_target"),
    (lambda: CosineDecay(0.1, 10, warmup_target=1.0, warmup_steps=-5), ValueError, "warmup_steps"),
    (lambda: CosineDecayRestarts(0.1, 0), ValueError, "first_decay_steps"),
    (lambda: CosineDecayRestarts(0.1, 10, t_mul=0.0), ValueError, "t_mul"),
    (lambda: CosineDecayRestarts(0.1, 10, m_mul=-1.0), ValueError, "m_mul"),
    (lambda: ExponentialDecay(float("nan"), 10, 0.5), ValueError, "initial_learning_rate"),
    (lambda: ExponentialDecay("fast", 10, 0.5), TypeError, "initial_learning_rate"),
    (lambda: PiecewiseConstantDecay([10, 20], [1.0, 0.5]), ValueError, "1 less than the length of values"),
    (lambda: PiecewiseConstantDecay([10], [1.0, 0.5, 0.1]), ValueError, "1 less than the length of values"),
    (lambda: PiecewiseConstantDecay([20, 10], [1.0, 0.5, 0.1]), ValueError, "strictly increasing"),
    (lambda: PiecewiseConstantDecay([10, 10], [1.0, 0.5, 0.1]), ValueError, "strictly increasing"),
    (lambda: PiecewiseConstantDecay([10], [1.0, -0.5]), ValueError, "values"),
])
def test_bad_arguments_are_refused_when_the_schedule_is_made(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_base_class_says_what_to_override():
    with pytest.raises(NotImplementedError, match="__call__"):
        LearningRateSchedule()(0)
    with pytest.raises(NotImplementedError, match="get_config"):
        schedules.serialize(LearningRateSchedule())


# ---------------------------------------------------------------- saving

ALL_SCHEDULES = [
    ExponentialDecay(0.1, 7, 0.5, staircase=True),
    PiecewiseConstantDecay([5, 10], [0.1, 0.05, 0.01]),
    PolynomialDecay(0.1, 20, end_learning_rate=0.01, power=0.5, cycle=True),
    InverseTimeDecay(0.1, 3.5, 0.5),
    CosineDecay(0.0, 25, alpha=0.05, warmup_target=0.2, warmup_steps=10),
    CosineDecayRestarts(0.1, 4, t_mul=1.5, m_mul=0.9, alpha=0.01),
]


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=lambda s: type(s).__name__)
def test_config_round_trip_through_json(schedule):
    clone = schedules.deserialize(json.loads(json.dumps(schedules.serialize(schedule))))
    assert type(clone) is type(schedule) and clone.get_config() == schedule.get_config()
    assert [clone(s) for s in range(40)] == [schedule(s) for s in range(40)]
    # a Keras-style dict (with "module" and "registered_name") is read too
    keras_style = {"module": "keras.optimizers.schedules", "registered_name": None, **schedules.serialize(schedule)}
    assert schedules.deserialize(keras_style).get_config() == schedule.get_config()


def test_deserialize_errors():
    with pytest.raises(ValueError, match="Unknown learning rate schedule 'Warmup'.*compile=False"):
        schedules.deserialize({"class_name": "Warmup", "config": {}})
    with pytest.raises(ValueError, match="class_name"):
        schedules.deserialize({"initial_learning_rate": 0.1})


# ---------------------------------------------------------------- in an optimizer

def test_an_optimizer_uses_schedule_of_iterations_at_each_step():
    """SGD's step on a gradient of 1 is exactly the step's learning rate: schedule(0), schedule(1), ..."""
    schedule = ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    opt = SGD(learning_rate=schedule)
    p = Parameter(np.zeros(1), "kernel")
    p.grad[...] = 1.0
    for step in range(5):
        assert opt.learning_rate == schedule(step) == schedule(opt.iterations)
        before = p.value[0]
        opt.apply_gradients([p])
        assert before - p.value[0] == pytest.approx(schedule(step), rel=1e-14)


def test_the_rate_of_an_optimizer_with_a_schedule_cannot_be_set():
    opt = SGD(learning_rate=ExponentialDecay(0.1, 10, 0.5))
    with pytest.raises(TypeError, match="LearningRateSchedule.*not settable"):
        opt.learning_rate = 0.01
    opt.learning_rate = PiecewiseConstantDecay([0], [0.3, 0.2])  # another schedule may replace it, as Keras
    assert opt.learning_rate == 0.3
    plain = SGD(0.1)
    plain.learning_rate = CosineDecay(0.2, 10)
    assert plain.learning_rate == 0.2


def test_a_function_is_not_a_schedule():
    with pytest.raises(TypeError, match="LearningRateSchedule"):
        SGD(learning_rate=lambda: 0.1)


def test_a_schedule_that_gives_a_negative_rate_is_caught_at_the_step():
    class Bad(LearningRateSchedule):
        def __call__(self, step):
            return 0.1 - 0.1 * step

    opt, p = SGD(Bad()), Parameter(np.zeros(1), "kernel")
    opt.apply_gradients([p])
    opt.apply_gradients([p])  # step 1: rate 0
    with pytest.raises(ValueError, match="gave -0.1.* at step 2"):
        opt.apply_gradients([p])


def _model(optimizer):
    nnscratch.set_random_seed(5)
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(4, activation="relu"), Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((40, 3)).astype(np.float32), rng.standard_normal((40, 1)).astype(np.float32)


def test_fit_logs_the_scheduled_rate_of_the_next_step():
    """4 steps an epoch: after epoch k the optimizer has done 4k steps, and logs schedule(4k)."""
    schedule = ExponentialDecay(0.05, decay_steps=3, decay_rate=0.5, staircase=True)
    x, y = _data()
    history = _model(SGD(schedule)).fit(x, y, batch_size=10, epochs=3, shuffle=False, verbose=0)
    assert history.history["learning_rate"] == [schedule(4), schedule(8), schedule(12)]
    assert history.history["learning_rate"] == [0.025, 0.0125, 0.003125]


def test_reduce_lr_on_plateau_with_a_schedule_raises_a_clear_error():
    x, y = _data()
    model = _model(SGD(ExponentialDecay(0.05, 3, 0.5)))
    plateau = ReduceLROnPlateau(monitor="loss", patience=0, min_delta=100.0)  # reduce at the first epoch
    with pytest.raises(TypeError, match="created with a `LearningRateSchedule`.*not settable"):
        model.fit(x, y, batch_size=10, epochs=2, verbose=0, callbacks=[plateau])


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=lambda s: type(s).__name__)
def test_a_model_saved_with_a_schedule_resumes_bit_for_bit(tmp_path, schedule):
    x, y = _data()
    straight = _model(optimizers.Adam(schedule))
    for start in range(0, 40, 10):
        straight.train_on_batch(x[start:start + 10], y[start:start + 10])
    stopped = _model(optimizers.Adam(schedule))
    for start in (0, 10):
        stopped.train_on_batch(x[start:start + 10], y[start:start + 10])
    stopped.save(tmp_path / "m.npz")
    resumed = nnscratch.load_model(tmp_path / "m.npz")
    assert resumed.optimizer.get_config() == straight.optimizer.get_config()
    assert resumed.optimizer.learning_rate == schedule(2)
    for start in (20, 30):
        resumed.train_on_batch(x[start:start + 10], y[start:start + 10])
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)
