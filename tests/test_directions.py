"""Directions: filter/layer/model normalization, Gaussian draws, seeds, mix, orthogonalize."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import cnn_bn, lw, mlp, mlp_bn
from scipy import stats
from torch import nn


def _per_filter(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).double().norm(dim=1)


def _models():
    return {"mlp": mlp(0), "cnn": cnn_bn(0), "mlp_bn": mlp_bn(0)}


@pytest.mark.parametrize("name", ["mlp", "cnn", "mlp_bn"])
@pytest.mark.parametrize("seed", [0, 1])
def test_filter_norm_matches_parameter_filters(name, seed):
    model = _models()[name]
    d = lw.directions.random(model, seed=seed)  # defaults: norm="filter", ignore="biasbn"
    assert isinstance(d, lw.Direction)
    assert list(d.keys()) == [n for n, _ in model.named_parameters()]
    n_filtered = 0
    for n, p in model.named_parameters():
        t = d[n]
        assert t.shape == p.shape and t.dtype == p.dtype and t.device == p.device, n
        if p.dim() > 1:
            n_filtered += 1
            np.testing.assert_allclose(
                _per_filter(t).numpy(), _per_filter(p.detach()).numpy(), rtol=1e-5
            )
            # Rescaled, not replaced: every filter of d is parallel to a Gaussian draw,
            # so it is not the parameter itself.
            assert not torch.allclose(t, p.detach())
        else:
            assert torch.equal(t, torch.zeros_like(p)), f"{n} should be ignored (biasbn)"
    assert n_filtered >= 2
    assert d.provenance["norm"] == "filter" and d.provenance["ignore"] == "biasbn"
    assert d.provenance["seed"] == seed and d.provenance["kind"] == "random"


def test_filter_norm_is_per_conv_filter_not_per_tensor():
    """A conv filter is the slice along dim 0 (all in-channels and the kernel together)."""
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(3, 5, 3))
    with torch.no_grad():
        conv[0].weight.mul_(torch.arange(1, 6, dtype=torch.float32).view(5, 1, 1, 1))
    d = lw.directions.random(conv, seed=0)
    want = _per_filter(conv[0].weight.detach())
    got = _per_filter(d["0.weight"])
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5)
    assert got[4] > 4 * got[0]  # filters keep their own scales


def test_filter_norm_without_ignore_scales_small_tensors_as_wholes():
    model = mlp_bn(0)
    with torch.no_grad():  # BN β starts at zero: give every small tensor a nonzero norm
        for p in model.parameters():
            if p.dim() <= 1:
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    d = lw.directions.random(model, seed=3, norm="filter", ignore=None)
    for n, p in model.named_parameters():
        if p.dim() > 1:
            np.testing.assert_allclose(
                _per_filter(d[n]).numpy(), _per_filter(p.detach()).numpy(), rtol=1e-5
            )
        else:
            assert float(d[n].norm()) == pytest.approx(float(p.detach().norm()), rel=1e-5)
            assert not torch.equal(d[n], p.detach())  # not the reference code's d = θ


def test_layer_norm():
    model = cnn_bn(0)
    d = lw.directions.random(model, seed=0, norm="layer")
    for n, p in model.named_parameters():
        if p.dim() > 1:
            assert float(d[n].norm()) == pytest.approx(float(p.detach().norm()), rel=1e-5)
            # Whole-tensor scaling: per-filter norms are not forced to match.
            assert not np.allclose(_per_filter(d[n]).numpy(), _per_filter(p.detach()).numpy(),
                                   rtol=1e-3)
        else:
            assert torch.equal(d[n], torch.zeros_like(p))
    d = lw.directions.random(model, seed=0, norm="layer", ignore=None)
    for n, p in model.named_parameters():
        assert float(d[n].norm()) == pytest.approx(float(p.detach().norm()), rel=1e-5), n


@pytest.mark.parametrize("ignore", ["biasbn", None])
def test_model_norm(ignore):
    model = mlp_bn(0)
    d = lw.directions.random(model, seed=0, norm="model", ignore=ignore)
    moving = [n for n, p in model.named_parameters() if ignore is None or p.dim() > 1]
    params = dict(model.named_parameters())
    theta_norm = math.sqrt(sum(float(params[n].detach().double().pow(2).sum()) for n in moving))
    d_norm = math.sqrt(sum(float(d[n].double().pow(2).sum()) for n in moving))
    assert d_norm == pytest.approx(theta_norm, rel=1e-6)
    assert d.norm() == pytest.approx(theta_norm, rel=1e-6)
    for n, p in model.named_parameters():
        if n not in moving:
            assert torch.equal(d[n], torch.zeros_like(p))
    # The whole vector is scaled by one factor: ratios to the raw draw are constant.
    raw = lw.directions.random(model, seed=0, norm=None, ignore=None)
    ratios = [float(d[n].norm() / raw[n].norm()) for n in moving]
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-5)


def test_unnormalized_is_standard_gaussian():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(100, 100), nn.Linear(100, 50))  # 15,150 values
    d = lw.directions.random(model, seed=0, norm=None, ignore=None)
    v = np.concatenate([d[n].numpy().ravel() for n in d]).astype(np.float64)
    assert v.size == sum(p.numel() for p in model.parameters())
    assert abs(v.mean()) < 0.05
    assert v.std() == pytest.approx(1.0, abs=0.03)
    assert (v < 0).mean() == pytest.approx(0.5, abs=0.02)
    # Gaussian, not uniform: kurtosis 3 (uniform: 1.8), values beyond ±√3 (uniform's edge).
    assert stats.kurtosis(v, fisher=False) == pytest.approx(3.0, abs=0.15)
    assert np.abs(v).max() > 3.0
    assert stats.kstest(v, "norm").pvalue > 1e-3
    assert stats.kstest(v, "uniform", args=(-math.sqrt(3), 2 * math.sqrt(3))).pvalue < 1e-6
    # ignore="biasbn" with norm=None: weights unchanged, biases zero.
    d2 = lw.directions.random(model, seed=0, norm=None, ignore="biasbn")
    assert torch.equal(d2["0.weight"], d["0.weight"])
    assert torch.equal(d2["0.bias"], torch.zeros(100))


@pytest.mark.parametrize("norm", ["filter", "layer", "model", None])
def test_same_seed_bit_identical_and_seeds_differ(norm):
    model = cnn_bn(0)
    a = lw.directions.random(model, seed=42, norm=norm)
    b = lw.directions.random(cnn_bn(0), seed=42, norm=norm)  # another instance, same weights
    torch.manual_seed(1234)  # the global RNG plays no part
    c = lw.directions.random(model, seed=42, norm=norm)
    for n in a:
        assert torch.equal(a[n], b[n]) and torch.equal(a[n], c[n]), n
    other = lw.directions.random(model, seed=43, norm=norm)
    assert not torch.equal(a["0.weight"], other["0.weight"])


def test_random_does_not_consume_global_rng():
    model = mlp(0)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    lw.directions.random(model, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_ignore_does_not_change_other_tensors():
    model = mlp_bn(0)
    a = lw.directions.random(model, seed=0, norm="filter", ignore="biasbn")
    b = lw.directions.random(model, seed=0, norm="filter", ignore=None)
    for n, p in model.named_parameters():
        if p.dim() > 1:
            assert torch.equal(a[n], b[n]), n


def test_float64_direction():
    model = mlp(0, dtype=torch.float64)
    d = lw.directions.random(model, seed=0)
    assert all(d[n].dtype == torch.float64 for n in d)
    np.testing.assert_allclose(
        _per_filter(d["0.weight"]).numpy(), _per_filter(model[0].weight.detach()).numpy(),
        rtol=1e-9,  # the reference's ε = 1e-10 in ‖dᵢ‖ + ε
    )


# --------------------------------------------------------------------------------- Direction
def test_direction_is_read_only_mapping():
    model = mlp(0)
    d = lw.directions.random(model, seed=0)
    with pytest.raises(TypeError):
        d["0.weight"] = torch.zeros(32, 64)  # type: ignore[index]
    with pytest.raises((TypeError, AttributeError)):
        del d["0.weight"]  # type: ignore[attr-defined]
    prov = d.provenance
    prov["seed"] = 99
    assert d.provenance["seed"] == 0, "provenance is returned as a copy"
    assert len(d) == 4 and set(d) == {n for n, _ in model.named_parameters()}
    assert "random" in d.label


def test_custom_direction_dot_and_norm():
    t = {"a": torch.tensor([3.0, 4.0]), "b": torch.tensor([[1.0, 0.0]])}
    d = lw.Direction(t)
    assert d.norm() == pytest.approx(math.sqrt(26))
    assert d.dot(d) == pytest.approx(26.0)
    assert d.provenance["kind"] == "custom"


# --------------------------------------------------------------------------------- mix
def _angle(a: lw.Direction, b: lw.Direction) -> float:
    return math.acos(max(-1.0, min(1.0, a.dot(b) / (a.norm() * b.norm()))))


def _nonorthogonal_pair():
    model = mlp(0)
    d1 = lw.directions.random(model, seed=0, norm=None, ignore=None)
    raw = lw.directions.random(model, seed=1, norm=None, ignore=None)
    # d2 = 0.6·d1 + 3·raw: not orthogonal to d1, a different norm.
    d2 = lw.directions.combine([0.6, 3.0], [d1, raw])
    return model, d1, d2


def test_mix_endpoints_norm_and_angle():
    _, d1, d2 = _nonorthogonal_pair()
    n1, n2 = d1.norm(), d2.norm()
    phi = _angle(d1, d2)
    assert 0.1 < phi < math.pi / 2 - 0.1, "test pair must be far from orthogonal"
    assert abs(n2 / n1 - 1) > 0.5, "test pair must differ in norm"
    m0, m1 = lw.directions.mix(d1, d2, 0.0), lw.directions.mix(d1, d2, 1.0)
    for n in d1:
        torch.testing.assert_close(m0[n], d1[n], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(m1[n], d2[n], rtol=1e-5, atol=1e-5)
    for t in [0.0, 0.1, 0.25, 0.5, 0.8, 1.0]:
        m = lw.directions.mix(d1, d2, t)
        assert isinstance(m, lw.Direction)
        assert m.norm() == pytest.approx((1 - t) * n1 + t * n2, rel=1e-5)
        assert _angle(d1, m) == pytest.approx(t * phi, abs=1e-4)
        assert _angle(m, d2) == pytest.approx((1 - t) * phi, abs=1e-4)
        # In the plane of d1 and d2: nothing left after projecting onto it.
        rest = lw.directions.orthogonalize(m, d1, d2)
        assert rest.norm() < 1e-4 * m.norm()
    assert lw.directions.mix(d1, d2, 0.5).provenance["kind"] == "mix"


def test_mix_coefficients_reproduce_mix():
    _, d1, d2 = _nonorthogonal_pair()
    a, b = lw.directions.mix_coefficients(d1, d2, 0.3)
    m = lw.directions.mix(d1, d2, 0.3)
    for n in d1:
        torch.testing.assert_close(m[n], a * d1[n] + b * d2[n], rtol=1e-5, atol=1e-6)


def test_mix_of_orthogonal_equal_norm_keeps_norm():
    model = mlp(0)
    d1 = lw.directions.random(model, seed=0, norm=None)
    d2 = lw.directions.orthogonalize(lw.directions.random(model, seed=1, norm=None), d1)
    d2 = lw.directions.combine([d1.norm() / d2.norm()], [d2])
    for t in [0.0, 0.3, 0.5, 1.0]:
        m = lw.directions.mix(d1, d2, t)
        assert m.norm() == pytest.approx(d1.norm(), rel=1e-5)
    mid = lw.directions.mix(d1, d2, 0.5)
    assert _angle(mid, d1) == pytest.approx(math.pi / 4, abs=1e-4)


def test_mix_antiparallel_raises_and_parallel_scales():
    _, d1, _ = _nonorthogonal_pair()
    anti = lw.directions.combine([-2.0], [d1])
    with pytest.raises(ValueError, match="antiparallel"):
        lw.directions.mix(d1, anti, 0.5)
    par = lw.directions.combine([3.0], [d1])
    m = lw.directions.mix(d1, par, 0.5)
    assert m.norm() == pytest.approx(2.0 * d1.norm(), rel=1e-5)
    assert _angle(m, d1) == pytest.approx(0.0, abs=1e-3)
    zero = lw.directions.combine([0.0], [d1])
    with pytest.raises(ValueError, match="zero"):
        lw.directions.mix(d1, zero, 0.5)


def test_mix_moves_buffers_with_same_coefficients():
    a, b = mlp_bn(0), mlp_bn(1)
    with torch.no_grad():
        b[1].running_mean.add_(1.0)
    d1 = lw.directions.towards(a, b, buffers=True)
    d2 = lw.directions.random(a, seed=0, norm=None)
    ca, _ = lw.directions.mix_coefficients(d1, d2, 0.4)
    m = lw.directions.mix(d1, d2, 0.4)
    torch.testing.assert_close(m.buffers["1.running_mean"], ca * d1.buffers["1.running_mean"])


# --------------------------------------------------------------------------------- orthogonalize
def test_orthogonalize():
    _, d1, d2 = _nonorthogonal_pair()
    assert abs(d1.dot(d2)) > 0.1 * d1.norm() * d2.norm()
    o = lw.directions.orthogonalize(d2, d1)
    assert isinstance(o, lw.Direction)
    assert abs(o.dot(d1)) < 1e-6 * o.norm() * d1.norm()
    # d2 = o + (projection on d1): nothing else changed.
    k = d2.dot(d1) / d1.dot(d1)
    for n in d1:
        torch.testing.assert_close(o[n] + k * d1[n], d2[n], rtol=1e-4, atol=1e-5)
    assert o.provenance.get("orthogonalized") is True
    assert d2.dot(d1) != 0.0  # inputs untouched


def test_orthogonalize_against_several():
    model = mlp(0)
    ds = [lw.directions.random(model, seed=s, norm=None) for s in range(3)]
    a = lw.directions.combine([1.0, 0.5], [ds[0], ds[1]])
    b = lw.directions.combine([1.0, -0.7], [ds[1], ds[0]])
    o = lw.directions.orthogonalize(ds[2], a, b)
    assert abs(o.dot(a)) < 1e-6 * o.norm() * a.norm()
    assert abs(o.dot(b)) < 1e-6 * o.norm() * b.norm()
    with pytest.raises(ValueError):
        lw.directions.orthogonalize(ds[2])


# --------------------------------------------------------------------------------- towards
def test_towards_is_difference():
    a, b = mlp(0), mlp(1)
    d = lw.directions.towards(a, b)
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        torch.testing.assert_close(d[n], pb.detach() - pa.detach())
    assert d.buffers == {}
    with pytest.raises(ValueError, match=r"same model class|architecture"):
        lw.directions.towards(a, mlp(0, sizes=(64, 16, 10)))


def test_towards_buffers():
    a, b = mlp_bn(0), mlp_bn(1)
    with torch.no_grad():
        b[1].running_mean.add_(0.5)
        b[1].running_var.mul_(2.0)
    d = lw.directions.towards(a, b, buffers=True)
    assert set(d.buffers) == {"1.running_mean", "1.running_var"}  # not num_batches_tracked
    torch.testing.assert_close(d.buffers["1.running_mean"], b[1].running_mean - a[1].running_mean)
    torch.testing.assert_close(d.buffers["1.running_var"], b[1].running_var - a[1].running_var)
    assert lw.directions.towards(a, b, buffers=False).buffers == {}
