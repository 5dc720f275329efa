"""Batch layouts (dicts, nested tuples, callables) and model outputs (dicts, ModelOutput-like,
namedtuples), the model's own loss, and half-precision outputs upcast before the loss."""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

import ls_widget as lw

V, D, C, T, N = 20, 8, 3, 6, 24


@dataclass
class Output:
    """A stand-in for a Hugging Face ModelOutput: attributes, loss only with labels."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None


class BertLike(nn.Module):
    """Token ids and an attention mask in, class logits out; its own loss given labels."""

    def __init__(self, dataclass_output: bool = False, refuse_labels: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(V, D)
        self.fc = nn.Linear(D, C)
        self.dataclass_output = dataclass_output
        self.refuse_labels = refuse_labels

    def forward(self, input_ids, attention_mask, labels=None):
        assert input_ids.dtype == torch.int64 and attention_mask.dtype == torch.int64
        if self.refuse_labels:
            assert labels is None, "the target must be withheld from the model"
        m = attention_mask.unsqueeze(-1).to(self.emb.weight.dtype)
        h = (self.emb(input_ids) * m).sum(1) / m.sum(1)
        logits = self.fc(torch.tanh(h))
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        if self.dataclass_output:
            return Output(logits, loss)
        return {"logits": logits} if loss is None else {"loss": loss, "logits": logits}


def token_data() -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, V, (N, T), generator=g)
    mask = torch.ones(N, T, dtype=torch.int64)
    mask[::3, T // 2 :] = 0
    labels = torch.randint(0, C, (N,), generator=g)
    return [{"input_ids": ids[i], "attention_mask": mask[i], "labels": labels[i]}
            for i in range(N)]


def by_hand(model: nn.Module, loader: DataLoader) -> float:
    """Sample-weighted mean of cross-entropy over the loader, computed directly."""
    total = 0.0
    with torch.no_grad():
        for b in loader:
            out = model(b["input_ids"], b["attention_mask"])
            logits = out.logits if isinstance(out, Output) else out["logits"]
            total += float(F.cross_entropy(logits, b["labels"])) * len(b["labels"])
    return total / N


@pytest.mark.parametrize("dataclass_output", [False, True])
def test_dict_batches_use_the_models_own_loss(dataclass_output):
    model = BertLike(dataclass_output)
    loader = DataLoader(token_data(), batch_size=10)
    seen = []
    model.register_forward_pre_hook(lambda m, a, kw: seen.append(sorted(kw)), with_kwargs=True)
    land = lw.Landscape(model, loader)
    assert seen and all(k == ["attention_mask", "input_ids", "labels"] for k in seen)
    own = 0.0
    with torch.no_grad():
        for b in loader:
            out = model(**b)
            own += float(out.loss if dataclass_output else out["loss"]) * len(b["labels"])
    assert land.center()["loss"] == pytest.approx(own / N, rel=1e-6)
    assert land.center()["loss"] == pytest.approx(by_hand(model, loader), rel=1e-6)
    curve = land.line(lw.directions.random(model, seed=0), n=5)
    assert np.isfinite(curve.values["loss"]).all()


def test_explicit_loss_withholds_the_target():
    model = BertLike(refuse_labels=True)
    loader = DataLoader(token_data(), batch_size=10)
    land = lw.Landscape(model, loader, F.cross_entropy, {"accuracy": lw.metrics.accuracy})
    assert land.center()["loss"] == pytest.approx(by_hand(model, loader), rel=1e-6)
    assert 0.0 <= land.center()["accuracy"] <= 1.0


def test_dict_batches_with_another_target_key():
    model = BertLike(refuse_labels=True)
    rows = [{"input_ids": r["input_ids"], "attention_mask": r["attention_mask"],
             "answer": r["labels"]} for r in token_data()]
    land = lw.Landscape(model, DataLoader(rows, batch_size=10), target="answer")
    assert land.center()["loss"] == pytest.approx(
        by_hand(model, DataLoader(token_data(), batch_size=10)), rel=1e-6
    )


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Linear(4, C)
        self.b = nn.Linear(5, C)

    def forward(self, x1, x2):
        return self.a(x1) + self.b(x2)


def two_inputs():
    g = torch.Generator().manual_seed(2)
    return (torch.randn(N, 4, generator=g), torch.randn(N, 5, generator=g),
            torch.randint(0, C, (N,), generator=g))


class PairDataset(Dataset):
    def __init__(self, X1, X2, y):
        self.X1, self.X2, self.y = X1, X2, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return (self.X1[i], self.X2[i]), self.y[i]


def test_nested_tuples_whole_and_from_a_loader():
    model = TwoInputs()
    X1, X2, y = two_inputs()
    with torch.no_grad():
        expect = float(F.cross_entropy(model(X1, X2), y))
    whole = lw.Landscape(model, ((X1, X2), y), batch_size=7)  # 4 batches, the last short
    assert len(whole.evaluator.batches) == 4
    assert whole.center()["loss"] == pytest.approx(expect, rel=1e-6)
    loader = DataLoader(PairDataset(X1, X2, y), batch_size=10)
    from_loader = lw.Landscape(model, loader)
    assert from_loader.center()["loss"] == pytest.approx(expect, rel=1e-6)
    d = lw.directions.random(model, seed=0)
    np.testing.assert_allclose(whole.line(d, n=5).values["loss"],
                               from_loader.line(d, n=5).values["loss"], rtol=1e-5)
    listed = [((X1[i : i + 8], X2[i : i + 8]), y[i : i + 8]) for i in range(0, N, 8)]
    assert lw.Landscape(model, listed).center()["loss"] == pytest.approx(expect, rel=1e-6)


Pair = namedtuple("Pair", ["hidden", "scores"])


class ManyOutputs(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(4, C)
        self.kind = kind

    def forward(self, x):
        s = self.fc(x)
        if self.kind == "dict":
            return {"hidden": x, "scores": s}
        if self.kind == "namedtuple":
            return Pair(x, s)
        return x, s


@pytest.mark.parametrize("kind", ["dict", "namedtuple", "tuple"])
def test_output_picks_by_key_and_by_callable(kind):
    model = ManyOutputs(kind)
    X, _, y = two_inputs()
    with torch.no_grad():
        expect = float(F.cross_entropy(model.fc(X), y))
    by_fn = lw.Landscape(model, (X, y), output=lambda out: out[1] if kind != "dict"
                         else out["scores"])
    assert by_fn.center()["loss"] == pytest.approx(expect, rel=1e-6)
    if kind != "tuple":
        by_key = lw.Landscape(model, (X, y), output="scores")
        assert by_key.center()["loss"] == pytest.approx(expect, rel=1e-6)


def test_inputs_and_target_callables():
    model = TwoInputs()
    X1, X2, y = two_inputs()
    with torch.no_grad():
        expect = float(F.cross_entropy(model(X1, X2), y))
    odd = [{"first": X1[i : i + 8], "second": X2[i : i + 8], "answer": y[i : i + 8]}
           for i in range(0, N, 8)]
    land = lw.Landscape(model, odd, inputs=lambda b: (b["first"], b["second"]),
                        target=lambda b: b["answer"])
    assert land.center()["loss"] == pytest.approx(expect, rel=1e-6)
    as_kw = lw.Landscape(model, odd, inputs=lambda b: {"x1": b["first"], "x2": b["second"]},
                         target="answer")
    assert as_kw.center()["loss"] == pytest.approx(expect, rel=1e-6)
    triples = [(X1[i : i + 8], X2[i : i + 8], y[i : i + 8]) for i in range(0, N, 8)]
    land3 = lw.Landscape(model, triples, inputs=lambda b: b[:2], target=lambda b: b[2])
    assert land3.center()["loss"] == pytest.approx(expect, rel=1e-6)


class Mlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, C))

    def forward(self, x):
        return self.net(x)


def test_bf16_model_gets_a_float32_loss():
    torch.manual_seed(3)
    X, y = torch.randn(64, 6), torch.randint(0, C, (64,))
    model = Mlp().to(torch.bfloat16)
    got = []
    land = lw.Landscape(model, (X, y), lambda out, t: got.append(out.dtype) or
                        F.cross_entropy(out, t))
    d1, d2 = lw.directions.random(model, seed=0), lw.directions.random(model, seed=1)
    surf = land.plane(d1, d2, span=0.5, n=11)
    assert set(got) == {torch.float32}
    Z = surf.values["loss"]
    assert len(np.unique(Z)) >= 100
    # The same plane of a float32 model: all distinct.
    ref32 = Mlp()
    land32 = lw.Landscape(ref32, (X, y))
    r1, r2 = lw.directions.random(ref32, seed=0), lw.directions.random(ref32, seed=1)
    assert len(np.unique(land32.plane(r1, r2, span=0.5, n=11).values["loss"])) == 121
    # Each point against a float32 evaluation of the bf16 weights there.
    fp32 = Mlp()
    names = [n for n, _ in model.named_parameters()]
    theta0 = {n: p.detach() for n, p in model.named_parameters()}
    ref = np.empty_like(Z)
    with torch.no_grad():
        for i, b in enumerate(surf.y):
            for j, a in enumerate(surf.x):
                for n, p in fp32.named_parameters():
                    w = theta0[n].float() + float(a) * d1[n].float() + float(b) * d2[n].float()
                    p.copy_(w.to(torch.bfloat16).float())
                ref[i, j] = float(F.cross_entropy(fp32(X), y))
    assert names
    np.testing.assert_allclose(Z, ref, rtol=3e-2, atol=1e-2)


def test_hessian_on_a_dict_batch_model():
    rows = token_data()
    model = BertLike()
    dict_land = lw.Landscape(model, DataLoader(rows, batch_size=10))
    ids = torch.stack([r["input_ids"] for r in rows])
    mask = torch.stack([r["attention_mask"] for r in rows])
    labels = torch.stack([r["labels"] for r in rows])
    tuple_land = lw.Landscape(model, ((ids, mask), labels), F.cross_entropy, batch_size=10)
    top = dict_land.hessian.eigen(k=1, which="top")
    ref = tuple_land.hessian.eigen(k=1, which="top")
    assert np.isfinite(top.values).all()
    np.testing.assert_allclose(top.values, ref.values, rtol=1e-4)
    trace = dict_land.hessian.trace(samples=10)
    assert np.isfinite(trace.mean)
    assert trace.mean == pytest.approx(tuple_land.hessian.trace(samples=10).mean, rel=1e-4)


# ---------------------------------------------------------------------------- errors
def test_dict_batches_without_a_target_key():
    rows = [{k: v for k, v in r.items() if k != "labels"} | {"answer": r["labels"]}
            for r in token_data()]
    with pytest.raises(KeyError, match=r"keys \['input_ids', 'attention_mask', 'answer'\].*"
                                       r"target=\"\.\.\.\".*target='answer'"):
        lw.Landscape(BertLike(), DataLoader(rows, batch_size=10))
    with pytest.raises(KeyError, match=r"target='nope' is not a key.*'answer'"):
        lw.Landscape(BertLike(), DataLoader(rows, batch_size=10), target="nope")


def test_target_key_for_tuple_batches():
    X1, X2, y = two_inputs()
    with pytest.raises(TypeError, match=r"target='labels' names a key.*tuples.*callable"):
        lw.Landscape(TwoInputs(), [((X1, X2), y)], target="labels")


def test_bad_inputs_and_target_arguments():
    X1, X2, y = two_inputs()
    with pytest.raises(TypeError, match=r"inputs must be a callable fn\(batch\)"):
        lw.Landscape(TwoInputs(), [((X1, X2), y)], inputs="x")
    with pytest.raises(TypeError, match=r"target must be .*got int"):
        lw.Landscape(TwoInputs(), [((X1, X2), y)], target=3)
    with pytest.raises(TypeError, match=r"the inputs= function returned None"):
        lw.Landscape(TwoInputs(), [((X1, X2), y)], inputs=lambda b: None)
    with pytest.raises(ValueError, match=r"different numbers of samples.*X\[0\]: 24.*X\[1\]: 5"):
        lw.Landscape(TwoInputs(), ((X1, X2[:5]), y))


def test_output_errors():
    X, _, y = two_inputs()
    with pytest.raises(KeyError, match=r"output='logits'.*no tensor 'logits'.*"
                                       r"\['hidden', 'scores'\]"):
        lw.Landscape(ManyOutputs("dict"), (X, y), output="logits").center()
    with pytest.raises(TypeError, match=r"output= <lambda> returned a str.*must return the tensor"):
        lw.Landscape(ManyOutputs("dict"), (X, y), output=lambda o: "x").center()
    with pytest.raises(TypeError, match=r"output must be a key or attribute name.*got int"):
        lw.Landscape(ManyOutputs("dict"), (X, y), output=1)


class NoTensors(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, C)

    def forward(self, x):
        return {"note": "nothing here", "n": 3}


def test_output_without_a_tensor():
    X, _, y = two_inputs()
    with pytest.raises(TypeError, match=r"holds no tensor for the loss; pass output=fn"):
        lw.Landscape(NoTensors(), (X, y)).center()


def test_keyword_forward_failure_names_the_keywords():
    rows = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in token_data()]
    with pytest.raises(TypeError, match=r"called as model\(\*\*kw\) with kw = "
                                        r"input_ids=\(shape \(10, 6\), int64\)"):
        lw.Landscape(BertLike(), DataLoader(rows, batch_size=10), F.cross_entropy)
