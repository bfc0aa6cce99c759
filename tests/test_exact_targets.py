"""Exact-target (Rao-Blackwellised) training losses against the plain sampled losses.

The identity under test: given the model's context (MDM: the partly masked ``x_t``; AR: the
prefix), the exact-target loss is the expectation of the sampled loss over the hidden tokens.
It is checked by enumerating every completion of the hidden tokens under the exact law (brute
force over ``V^L``), for the loss and for its gradient, on random languages with forbidden
transitions. Deterministic: no calibrated tolerance, only float32 rounding.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mdm_exact.languages import all_sequences  # noqa: E402
from mdm_exact.testing.languages import random_language  # noqa: E402
from neural import diffusion as D  # noqa: E402
from neural.ar import ar_loss  # noqa: E402
from neural.model import ModelConfig, Transformer  # noqa: E402

LANGS = [("ngram", 2, 2), ("ngram", 3, 3), ("hmm", 3, 2)]  # (kind, V, order or states)


def _lang(kind, V, k, seed):
    if kind == "ngram":
        return random_language(seed, "ngram", V=V, order=k, zero_frac=0.3)
    return random_language(seed, "hmm", V=V, S=k, zero_frac=0.3)


def _net(V, L, causal, seed):
    torch.manual_seed(seed)
    net = Transformer(ModelConfig(vocab_size=V, block_size=L, n_layer=1, n_head=2, n_embd=16, causal=causal))
    with torch.no_grad():  # spread the logits so that the test is not at the uniform point
        net.head.weight.mul_(8.0)
    return net


def _loss_and_grad(net, fn):
    net.zero_grad(set_to_none=True)
    loss = fn()
    loss.backward()
    return float(loss.detach()), torch.cat([p.grad.reshape(-1) for p in net.parameters() if p.grad is not None])


@pytest.mark.parametrize("kind,V,k", LANGS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mdm_exact_targets_are_the_expected_sampled_loss_given_the_mask(kind, V, k, seed):
    """One sequence: the times and masks depend only on the generator and the shape, so every
    completion x0' of the hidden positions meets the same x_t; sum_x0' q(x0' | x_R) loss(x0')
    equals the exact-target loss, and so does the gradient."""
    L = 5
    lang = _lang(kind, V, k, seed)
    net = _net(V, L, False, seed)
    x0 = torch.from_numpy(lang.sample(1, L, rng=seed))  # (1, L)

    for gseed in range(100, 200):  # the first generator seed that masks some but not all positions
        g = torch.Generator().manual_seed(gseed)
        t = D.sample_t(1, generator=g)
        _, masked = D.mask(x0, t, "linear", g, net.config.mask_id)
        hidden = np.flatnonzero(masked[0].numpy())
        if 0 < hidden.size < L:
            break

    def draw(x, exact):
        g = torch.Generator().manual_seed(gseed)
        return D.mdm_loss(net, x, generator=g, lang=lang if exact else None)

    exact_loss, exact_grad = _loss_and_grad(net, lambda: draw(x0, True))
    comps = np.repeat(x0.numpy(), V ** hidden.size, axis=0)  # (V^h, L)
    comps[:, hidden] = np.array(list(itertools.product(range(V), repeat=hidden.size)))
    w = np.exp(lang.log_prob(comps) - lang.log_prob_revealed(x0.numpy(), ~masked.numpy())[0])
    assert abs(w.sum() - 1.0) < 1e-12
    mean_loss, mean_grad = 0.0, torch.zeros_like(exact_grad)
    for row, wi in zip(comps, w):
        if wi == 0:
            continue
        li, gi = _loss_and_grad(net, lambda: draw(torch.from_numpy(row[None]), False))
        mean_loss += wi * li
        mean_grad += wi * gi
    assert exact_loss == pytest.approx(mean_loss, rel=2e-5)
    torch.testing.assert_close(exact_grad, mean_grad.float(), rtol=2e-4, atol=2e-6)


@pytest.mark.parametrize("kind,V,k", LANGS)
def test_ar_exact_targets_have_the_expected_sampled_loss(kind, V, k):
    """sum_x q(x) ar_loss(x) = sum_x q(x) ar_loss_exact(x) over all V^L sequences (loss and gradient);
    the exact one on a single sequence is not the sampled one (it does not see x_k)."""
    L = 4
    lang = _lang(kind, V, k, 7)
    net = _net(V, L, True, 7)
    X = all_sequences(V, L)
    q = torch.from_numpy(np.exp(lang.log_prob(X))).float()  # (V^L,)

    def expected(exact):
        losses = [ar_loss(net, torch.from_numpy(x[None]), lang=lang if exact else None) for x in X]
        return (q * torch.stack(losses)).sum()

    l_s, g_s = _loss_and_grad(net, lambda: expected(False))
    l_e, g_e = _loss_and_grad(net, lambda: expected(True))
    assert l_e == pytest.approx(l_s, rel=2e-5)
    torch.testing.assert_close(g_e, g_s, rtol=2e-4, atol=2e-6)
    pc = lang.prefix_conditionals(X)  # (V^L, L, V)
    x = torch.from_numpy(X[np.flatnonzero((q.numpy() > 0) & (pc.max(-1) < 1).any(1))[:1]])  # a non-degenerate law
    with torch.no_grad():
        assert abs(float(ar_loss(net, x, lang=lang)) - float(ar_loss(net, x))) > 1e-5  # well above float32 rounding


def test_exact_targets_ignore_forbidden_tokens_even_at_minus_infinity():
    """0 * log p = 0 where q = 0, also where the model gives log p = -inf (no NaN)."""
    q = torch.tensor([[0.5, 0.5, 0.0]])
    logp = torch.tensor([[np.log(0.5), np.log(0.5), -np.inf]], dtype=torch.float32)
    assert float(D.cross_entropy_to(q, logp)) == pytest.approx(np.log(2.0), rel=1e-6)


def test_train_config_refuses_unknown_targets():
    from neural.train import TrainConfig

    with pytest.raises(ValueError, match=r"TrainConfig.targets: expected one of \('sampled', 'exact'\)"):
        TrainConfig(targets="soft")


@pytest.mark.parametrize("kind", ["ar", "mdm"])
def test_tiny_training_with_exact_targets(kind):
    """Exact targets train: the loss falls and the run is reproducible under its seed."""
    from neural.train import TrainConfig, train

    lang = random_language(5, "ngram", V=3, order=2, zero_frac=0.3)
    mc = ModelConfig(vocab_size=3, block_size=12, n_layer=1, n_head=2, n_embd=16, causal=kind == "ar")
    cfg = TrainConfig(kind=kind, L=12, batch_size=32, lr=3e-3, max_steps=40, eval_every=40, val_size=64, seed=0,
                      target_rel=0.0, targets="exact")
    a, b = train(lang, mc, cfg), train(lang, mc, cfg)
    assert a.history[-1]["val"] < a.history[0]["val"] - 0.05
    def strip(h):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in h]

    assert strip(a.history) == strip(b.history)


def test_cli_train_with_exact_targets_records_them(tmp_path, capsys):
    """``mdm-theory neural train --targets exact``: the checkpoint's training configuration says so."""
    from mdm_exact.languages.io import save_language
    from mdm_exact.runtime.cli import main
    from neural.checkpoint import load_checkpoint

    spec = str(save_language(random_language(3, "ngram", V=3, order=2, zero_frac=0.3), tmp_path / "g.json"))
    ck = tmp_path / "m.pt"
    args = ["neural", "train", "--language", spec, "--kind", "mdm", "--length", "8", "--layers", "1", "--hidden",
            "16", "--heads", "2", "--batch-size", "8", "--max-steps", "4", "--eval-every", "2", "--val-size", "8",
            "--targets", "exact", "-o", str(ck), "--json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 4
    _, meta = load_checkpoint(ck)
    assert meta["train"]["config"]["targets"] == "exact"
    with pytest.raises(SystemExit) as e:
        main(args[:-5] + ["--targets", "soft", "-o", str(ck)])
    assert e.value.code == 2
    assert "argument --targets: invalid choice: 'soft'" in capsys.readouterr().err
