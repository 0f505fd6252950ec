"""Bad input to rnr.RNN: the exception type and the message, which names the argument and the value received."""
import re

import pytest
import torch

from rnr.core.rnn import RNN

I, H = 3, 5


def lit(text: str) -> str:
    """A message fragment matched literally (pytest.raises(match=...) takes a regular expression)."""
    return re.escape(text)


def _x(*shape, **kw):
    return torch.randn(*shape, **kw)


def _nan():
    x = torch.zeros(2, 4, I)
    x[1, 2, 0] = float("nan")
    return x


def _inf():
    x = torch.zeros(2, 4, I)
    x[0, 3, 2] = -float("inf")
    return x


FORWARD_CASES = {  # id: (forward args, forward kwargs, exception, message)
    "x_2d": ((_x(4, I),), {}, ValueError,
             lit("x must have 3 dimensions (batch, time, features), got 2 with shape (4, 3)") + ".*unsqueeze\\(0\\)"),
    "x_4d": ((_x(2, 4, I, 1),), {}, ValueError,
             lit("x must have 3 dimensions (batch, time, features), got 4 with shape (2, 4, 3, 1)")),
    "x_features": ((_x(2, 4, 7),), {}, ValueError,
                   lit("x must have input_size=3 features in its last dimension, got shape (2, 4, 7)")),
    "x_no_steps": ((_x(2, 0, I),), {}, ValueError, lit("x must have at least one time step, got shape (2, 0, 3)")),
    "x_nan": ((_nan(),), {}, ValueError, lit("x must be finite, got NaN or inf (first at index (1, 2, 0))")),
    "x_inf": ((_inf(),), {}, ValueError, lit("x must be finite, got NaN or inf (first at index (0, 3, 2))")),
    "x_int": ((torch.ones(2, 4, I, dtype=torch.long),), {}, TypeError,
              lit("x must hold floating-point values, got dtype torch.int64")),
    "x_list": (([[[0.0, 1.0, 2.0]]],), {}, TypeError, lit("x must be a torch.Tensor, got list")),
    "lengths_zero": ((_x(2, 4, I),), {"lengths": torch.tensor([4, 0])}, ValueError,
                     lit("lengths must be >= 1 (every sequence needs at least one step), got lengths[1]=0")),
    "lengths_past_T": ((_x(2, 4, I),), {"lengths": torch.tensor([5, 2])}, ValueError,
                       lit("lengths must be <= the padded length T=4 of the batch, got lengths[0]=5")),
    "lengths_count": ((_x(2, 4, I),), {"lengths": [4, 3, 2]}, ValueError,
                      lit("lengths must have one entry per sequence (batch size 2), got 3 entries")),
    "lengths_float": ((_x(2, 4, I),), {"lengths": torch.tensor([4.0, 3.0])}, TypeError,
                      lit("lengths must hold integers, got dtype torch.float32")),
    "lengths_str": ((_x(2, 4, I),), {"lengths": "ab"}, TypeError,
                    lit("lengths must be a sequence of integers, got str")),
    "h0_shape": ((_x(2, 4, I), _x(1, 3, H)), {}, ValueError,
                 lit("h0 must have shape (1, 2, 5) (num_layers * num_directions, batch, hidden), got (1, 3, 5)")),
    "h0_layers": ((_x(2, 4, I), _x(2, 2, H)), {}, ValueError, lit("h0 must have shape (1, 2, 5)") + ".*got \\(2, 2, 5\\)"),
    "h0_nan": ((_x(2, 4, I), torch.full((1, 2, H), float("nan"))), {}, ValueError, lit("h0 must be finite")),
}


@pytest.mark.parametrize("args,kwargs,exc,match", FORWARD_CASES.values(), ids=FORWARD_CASES.keys())
def test_forward_rejects_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        RNN(I, H)(*args, **kwargs)


def test_lstm_h0_must_be_a_pair_and_the_message_says_what_came():
    lstm = RNN(I, H, cell="lstm")
    x = _x(2, 4, I)
    with pytest.raises(TypeError, match=lit("h0 must be an (h, c) pair of tensors for cell='lstm'") + ".*got Tensor"):
        lstm(x, _x(1, 2, H))


def test_lstm_h0_each_part_is_checked():
    lstm = RNN(I, H, cell="lstm")
    x = _x(2, 4, I)
    with pytest.raises(ValueError, match=lit("h0[1] must have shape (1, 2, 5)") + ".*got \\(2, 2, 5\\)"):
        lstm(x, (_x(1, 2, H), _x(2, 2, H)))
    with pytest.raises(ValueError, match=lit("h0[0] must have shape (1, 2, 5)") + ".*got \\(1, 2, 4\\)"):
        lstm(x, (_x(1, 2, H - 1), _x(1, 2, H)))


CONSTRUCTOR_CASES = {  # id: (kwargs beyond input_size and hidden_size, exception, message)
    "cell": ({"cell": "foo"}, ValueError, lit("cell must be one of ['elman', 'lstm', 'gru', 'mingru', 'minlstm'], "
                                              "got 'foo'")),
    "nonlinearity": ({"nonlinearity": "swish"}, ValueError,
                     lit("nonlinearity must be one of ['identity', 'relu', 'sigmoid', 'tanh']") + ".*got 'swish'"),
    "nonlinearity_gru": ({"cell": "gru", "nonlinearity": "relu"}, ValueError,
                         lit("nonlinearity applies only to cell='elman', got nonlinearity='relu' with cell='gru'")),
    "nonlinearity_lstm_callable": ({"cell": "lstm", "nonlinearity": torch.sigmoid}, ValueError,
                                   lit("nonlinearity applies only to cell='elman'") + ".*cell='lstm'"),
    "hidden_zero": ({"hidden_size": 0}, ValueError, lit("hidden_size must be >= 1, got 0")),
    "hidden_float": ({"hidden_size": 2.5}, TypeError, lit("hidden_size must be an int, got float 2.5")),
    "hidden_bool": ({"hidden_size": True}, TypeError, lit("hidden_size must be an int, got bool True")),
    "input_zero": ({"input_size": 0}, ValueError, lit("input_size must be >= 1, got 0")),
    "layers_zero": ({"num_layers": 0}, ValueError, lit("num_layers must be >= 1, got 0")),
    "dropout_high": ({"dropout": 1.5}, ValueError, lit("dropout must be in [0, 1), got 1.5")),
    "dropout_one": ({"dropout": 1}, ValueError, lit("dropout must be in [0, 1), got 1")),
    "dropout_str": ({"dropout": "0.5"}, TypeError, lit("dropout must be a float in [0, 1), got str '0.5'")),
}


@pytest.mark.parametrize("kwargs,exc,match", CONSTRUCTOR_CASES.values(), ids=CONSTRUCTOR_CASES.keys())
def test_constructor_rejects_bad_settings(kwargs, exc, match):
    kwargs = {"input_size": I, "hidden_size": H, **kwargs}
    with pytest.raises(exc, match=match):
        RNN(**kwargs)


def test_good_input_passes_every_check():
    """The boundaries of each rule are accepted: lengths 1 and T, dropout 0, h0 of the right shape."""
    model = RNN(I, H, num_layers=2, dropout=0.0)
    out, h_n = model(_x(2, 4, I), _x(2, 2, H), lengths=[1, 4])
    assert out.shape == (2, 4, H) and h_n.shape == (2, 2, H)
