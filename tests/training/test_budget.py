"""Time budgets in rnr.fit: the cosine schedule follows the time spent where the updates would not fit in
``max_minutes``, and the updates alone where they do."""
import math

import pytest

import rnr
from test_fit import QUIET, many_to_one, sums


def test_with_a_budget_the_cosine_follows_the_time_spent_where_that_is_further_along(monkeypatch):
    from rnr.training.core import TrainingCore

    E, lr = 4, 0.01
    roomy = rnr.fit(many_to_one(), sums(), epochs=E, lr=lr, lr_schedule="cosine", max_minutes=60, **QUIET)
    steps = roomy.rows[0]["steps"]  # updates per epoch: the cosine now moves with every update
    want = [lr * (1 + math.cos(math.pi * min((e + 1) * steps / (E * steps), 1))) / 2 for e in range(E)]
    assert roomy["lr"] == pytest.approx(want, abs=1e-12)  # the rate as each epoch ended
    monkeypatch.setattr(TrainingCore, "elapsed", lambda core: 0.75 * 60 * 60)  # three quarters of the budget gone
    hurried = rnr.fit(many_to_one(), sums(), epochs=E, lr=lr, lr_schedule="cosine", max_minutes=60, **QUIET)
    late = lr * (1 + math.cos(math.pi * 0.75)) / 2
    assert hurried["lr"][0] == pytest.approx(late) and hurried["lr"][-1] == pytest.approx(0.0, abs=1e-12)
