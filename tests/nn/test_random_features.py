"""The random-feature estimate of the softmax kernel converges as 1/sqrt(m): its mean
square error over independent projections equals the single-feature variance (derived
in closed form below) divided by m, for every feature map, within sampling error."""
import math

import pytest
import torch

from aimc.nn.random_features import feature_map, random_projection, softmax_kernel

D = 16
R = 600  # independent projections per m
MS = (8, 32, 128, 512)


def _pair():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(D, generator=g, dtype=torch.float64)
    y = torch.randn(D, generator=g, dtype=torch.float64)
    return 0.8 * x / x.norm(), 0.6 * y / y.norm()


def _estimates(kind: str, m: int, proj: str, seed: int) -> torch.Tensor:
    """(R,) estimates of exp(x . y), one per independent projection."""
    x, y = _pair()
    g = torch.Generator().manual_seed(seed)
    w = torch.stack([random_projection(D, m, proj, "chi", generator=g, dtype=torch.float64) for _ in range(R)])
    fx = feature_map(w @ x, x.expand(R, D), kind)
    fy = feature_map(w @ y, y.expand(R, D), kind)
    return (fx * fy).sum(dim=-1)


def _one_feature_variance(kind: str) -> float:
    """Variance of one projection's term of the estimate, w ~ N(0, I):
    E[exp(a w.z)] = exp(a^2 |z|^2 / 2), E[cos(w.u)] = exp(-|u|^2/2)."""
    x, y = _pair()
    nx, ny = float(x @ x), float(y @ y)
    z2, u2, sm = float((x + y) @ (x + y)), float((x - y) @ (x - y)), math.exp(float(x @ y))
    if kind == "positive":  # exp(w.z) exp(-(|x|^2+|y|^2)/2)
        return math.exp(2 * z2 - nx - ny) - sm**2
    if kind == "hyperbolic":  # cosh(w.z) exp(-(|x|^2+|y|^2)/2)
        return (0.5 * math.exp(2 * z2) + 0.5) * math.exp(-nx - ny) - sm**2
    # trig: cos(w.u) exp((|x|^2+|y|^2)/2)
    return (0.5 * (1 + math.exp(-2 * u2)) - math.exp(-u2)) * math.exp(nx + ny)


@pytest.mark.parametrize("kind", ["trig", "positive", "hyperbolic"])
def test_mse_is_one_feature_variance_over_m(kind):
    x, y = _pair()
    exact = float(softmax_kernel(x[None], y[None]))
    var1 = _one_feature_variance(kind)
    for i, m in enumerate(MS):
        err2 = (_estimates(kind, m, "iid", seed=10 + i) - exact) ** 2
        mse, se = float(err2.mean()), float(err2.std() / math.sqrt(R))
        assert abs(mse - var1 / m) < 5 * se, f"{kind}, m={m}: MSE {mse:.3g} vs var/m {var1 / m:.3g} (se {se:.2g})"


@pytest.mark.parametrize("kind", ["positive", "hyperbolic"])
def test_orthogonal_features_unbiased_and_no_worse(kind):
    x, y = _pair()
    exact = float(softmax_kernel(x[None], y[None]))
    for i, m in enumerate((32, 512)):
        est = _estimates(kind, m, "orthogonal", seed=40 + i)
        se = float(est.std() / math.sqrt(R))
        assert abs(float(est.mean()) - exact) < 5 * se
        err2 = (est - exact) ** 2
        mse, mse_se = float(err2.mean()), float(err2.std() / math.sqrt(R))
        assert mse < _one_feature_variance(kind) / m + 5 * mse_se


def test_rms_error_slope_is_minus_half():
    """log RMS error against log m: slope -1/2 within 4 standard errors."""
    x, y = _pair()
    exact = float(softmax_kernel(x[None], y[None]))
    logs = []
    for i, m in enumerate((8, 512)):
        err2 = (_estimates("hyperbolic", m, "iid", seed=70 + i) - exact) ** 2
        logs.append((0.5 * math.log(float(err2.mean())), 0.5 * float(err2.std() / err2.mean()) / math.sqrt(R)))
    slope = (logs[1][0] - logs[0][0]) / math.log(512 / 8)
    se = math.hypot(logs[0][1], logs[1][1]) / math.log(512 / 8)
    assert abs(slope + 0.5) < 4 * se, f"slope {slope:.3f} (se {se:.3f})"


def test_orthogonal_blocks_and_norms():
    g = torch.Generator().manual_seed(0)
    w = random_projection(8, 20, "orthogonal", "fixed", generator=g, dtype=torch.float64)
    assert w.shape == (20, 8)
    torch.testing.assert_close(w.norm(dim=1), torch.full((20,), math.sqrt(8), dtype=torch.float64))
    for b in (w[:8], w[8:16]):
        torch.testing.assert_close(b @ b.T, 8 * torch.eye(8, dtype=torch.float64))
    w2 = random_projection(8, 20, "orthogonal", "fixed", generator=torch.Generator().manual_seed(0),
                           dtype=torch.float64)
    assert torch.equal(w, w2)


def test_bad_arguments():
    g = torch.Generator()
    with pytest.raises(ValueError, match="kind"):
        random_projection(4, 4, "gaussian", generator=g)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="d and m"):
        random_projection(0, 4, generator=g)
    with pytest.raises(ValueError, match="kind"):
        feature_map(torch.zeros(2), torch.zeros(2), "relu")  # type: ignore[arg-type]
