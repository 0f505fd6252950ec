"""The vectorising float32 activations of rnr.kernels against numpy's exact ones, NaN and infinities included."""
import numpy as np
import pytest

from rnr.core import kernels

pytestmark = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba is not installed")


def _apply(f, x):
    out = x.copy()
    f(out)
    return out


@pytest.mark.parametrize("dtype,tol", [(np.float32, 3e-7), (np.float64, 1e-15)])
def test_tanh_and_sigmoid_match_numpy(dtype, tol):
    x = np.linspace(-30, 30, 200_001).astype(dtype)
    exact = x.astype(np.float64)
    assert np.abs(_apply(kernels.tanh_, x) - np.tanh(exact)).max() <= tol
    assert np.abs(_apply(kernels.sigmoid_, x) - 1 / (1 + np.exp(-exact))).max() <= 2 * tol


@pytest.mark.parametrize("f", [kernels.tanh_, kernels.sigmoid_], ids=["tanh", "sigmoid"])
def test_nan_passes_through_and_infinities_saturate(f):
    out = _apply(f, np.float32([np.nan, np.inf, -np.inf, 0.0]))
    assert np.isnan(out[0])
    want = [1.0, -1.0, 0.0] if f is kernels.tanh_ else [1.0, 0.0, 0.5]
    np.testing.assert_allclose(out[1:], want, atol=3e-7)
