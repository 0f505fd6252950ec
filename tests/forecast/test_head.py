"""The direct head's seasonal table: the same forecasts and gradients as the head fed the seasonal features."""
import pytest
import torch

from rnr.forecast.net import ForecastNet, season_features


@pytest.mark.parametrize("season, n_future, base_input", [(24, 0, False), ((24, 168), 2, True), (7, 1, False)])
def test_season_table_equals_the_features(season, n_future, base_input):
    torch.manual_seed(0)
    K, J, B, T, H = 2, 10, 3, 5, 8
    net = ForecastNet(K, 1, n_future, 0, [], season, J, "direct", (0.1,), "gru", H, 1, 0.0, 16,
                      base_input=base_input).double()
    h = torch.randn(B, T, H, dtype=torch.float64, requires_grad=True)
    tix = torch.randint(0, 1000, (B, T))
    future = torch.randn(B, T, J, n_future, dtype=torch.float64)
    seasonal = season_features(tix[..., None] + torch.arange(1, J + 1), season).double()  # steps t+1..t+J
    with_features = torch.cat([future, seasonal], dim=-1).flatten(2)  # (B, T, J * (F + s)), as predict builds it
    without = future.flatten(2)
    if base_input:
        base = torch.randn(B, T, J * K, dtype=torch.float64)
        with_features, without = torch.cat([with_features, base], -1), torch.cat([without, base], -1)
    params = [h, *net.head.parameters()]
    plain = net.forecast(h, with_features)
    table = net.forecast(h, without, tix)
    assert table.shape == plain.shape == (B, T, J, K, 2)
    torch.testing.assert_close(table, plain, rtol=1e-12, atol=1e-12)
    weights = torch.randn_like(plain)
    for a, b in zip(torch.autograd.grad((plain * weights).sum(), params),
                    torch.autograd.grad((table * weights).sum(), params)):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)


def test_no_season_or_recursive_head_ignores_tix():
    torch.manual_seed(0)
    for season, strategy in [(None, "direct"), (24, "recursive")]:
        net = ForecastNet(1, 0, 0, 0, [], season, 4, strategy, (), "gru", 8, 1, 0.0, 16)
        h = torch.randn(2, 3, 8)
        known = torch.randn(2, 3, net.head[0].in_features - 8 if strategy == "direct" else net.head.in_features - 8)
        torch.testing.assert_close(net.forecast(h, known, torch.zeros(2, 3, dtype=torch.int64)),
                                   net.forecast(h, known))
