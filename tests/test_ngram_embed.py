"""Local n-gram embeddings (``neural.model.ModelConfig.ngram_embed``).

The design claim: for an n-gram language, the exact conditional of one masked token between
revealed neighbours is a softmax of a *sum of table lookups*, one per length-``n`` window through
the position, each indexed by that window's other ``n - 1`` tokens, which is exactly what
``local_ngram_index`` hands the network. Checked here against the exact engine, along with the
index layout, causality and the KV cache of the causal variant, warm starts and bad sizes.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mdm_exact.languages import random_ngram  # noqa: E402
from neural.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from neural.model import KVCache, ModelConfig, Transformer, grow_network, local_ngram_index  # noqa: E402


def _decode(row, V, digits):
    base = V + 2
    return [(row // base ** k) % base for k in range(digits)]


@pytest.mark.parametrize("n", [2, 3, 4])
def test_index_layout_brute_force(n):
    """Each table row decodes to the window's other tokens, in order, with ``V + 1`` outside the sequence."""
    V, L = 3, 7
    rng = np.random.default_rng(n)
    idx = torch.from_numpy(rng.integers(0, V + 1, size=(2, L)))
    for causal in (False, True):
        c = ModelConfig(vocab_size=V, block_size=L, n_layer=1, n_head=2, n_embd=8, causal=causal, ngram_embed=n)
        rows = local_ngram_index(idx, c).numpy()
        size = (V + 2) ** (n - 1)
        assert rows.shape == (2, L, c.ngram_tables) and rows.min() >= 0 and rows.max() < c.ngram_rows
        x = idx.numpy()
        tok = lambda b, p: int(x[b, p]) if 0 <= p < L else V + 1  # noqa: E731
        for b, i in itertools.product(range(2), range(L)):
            if causal:
                want = [tok(b, p) for p in range(i - n + 2, i + 1)]
                assert _decode(rows[b, i, 0], V, n - 1) == want
            else:
                for a in range(n):
                    want = [tok(b, i - a + j) for j in range(n) if j != a]
                    assert rows[b, i, a] // size == a
                    assert _decode(rows[b, i, a] % size, V, n - 1) == want


@pytest.mark.parametrize("n", [2, 3, 4])
def test_single_masked_token_is_a_sum_of_the_tables(n):
    """With table ``a``'s row for a window (the other tokens, candidate ``x`` at slot ``a``)
    filled with ``log q(window's last token | its first n - 1)``, the softmax of the summed rows
    is the exact conditional of a lone masked token at every interior position (all ``n`` windows
    inside the sequence), for a random n-gram with zeros: -inf rows give exact zeros."""
    V, L = 3, 3 * n + 2
    lang = random_ngram(n, V, 1.0, 0.15, rng=np.random.default_rng(10 + n))
    c = ModelConfig(vocab_size=V, block_size=L, n_layer=1, n_head=2, n_embd=8, ngram_embed=n)
    base, size = V + 2, (V + 2) ** (n - 1)
    with np.errstate(divide="ignore"):
        logc = np.log(lang.conditional)  # (V^(n-1), V), big-endian contexts; -inf where impossible
    assert np.isinf(logc).any()
    W = np.full((c.ngram_rows, V), np.nan)
    for a in range(n):
        for others in itertools.product(range(V), repeat=n - 1):
            row = a * size + sum(d * base ** k for k, d in enumerate(others))
            for xv in range(V):
                w = list(others[:a]) + [xv] + list(others[a:])
                ctx = sum(t * V ** (n - 2 - k) for k, t in enumerate(w[:-1]))
                W[row, xv] = logc[ctx, w[-1]]
    x = lang.sample(20, L, rng=np.random.default_rng(0))  # (20, L), in the support
    checked = 0
    for i in range(n - 1, L - n + 1):
        revealed = np.ones_like(x, dtype=bool)
        revealed[:, i] = False
        q = lang.conditional_marginals(x, revealed)[:, i]  # (20, V)
        masked = x.copy()
        masked[:, i] = V
        rows = local_ngram_index(torch.from_numpy(masked), c).numpy()[:, i]  # (20, n)
        s = W[rows].sum(axis=1)  # (20, V)
        assert not np.isnan(s).any()
        with np.errstate(invalid="ignore"):
            p = np.exp(s - s.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)
        assert ((p == 0) == (q == 0)).all()
        checked += 1
    assert checked == L - 2 * n + 2


@pytest.mark.parametrize("n", [2, 3, 4])
def test_causal_tables_respect_causality_and_the_kv_cache(n):
    """The causal network's logits at position t do not depend on inputs after t, and decoding
    one token at a time through the KV cache gives the full forward's logits."""
    torch.manual_seed(n)
    L = 9
    c = ModelConfig(vocab_size=4, block_size=L, n_layer=2, n_head=2, n_embd=8, causal=True, ngram_embed=n)
    net = Transformer(c)
    torch.nn.init.normal_(net.wne.weight)
    x = torch.randint(0, 5, (3, L))
    with torch.no_grad():
        full = net(x)
        y = x.clone()
        y[:, 5:] = (y[:, 5:] + 1) % 5
        torch.testing.assert_close(net(y)[:, :5], full[:, :5], rtol=0, atol=0)
        cache = KVCache(c, 3, L, device="cpu", dtype=torch.float32)
        steps = [net(x[:, t : t + 1], cache=cache)[:, -1] for t in range(L)]
    torch.testing.assert_close(torch.stack(steps, 1), full, rtol=1e-5, atol=1e-6)


def test_tables_grow_into_a_network_and_load_from_old_checkpoints(tmp_path):
    """Adding tables to a trained network keeps its function (zero rows) and gives them gradients;
    changing or removing them is refused; a checkpoint keeps them (one written before the field
    loads without: tests/test_neural.py)."""
    torch.manual_seed(0)
    old_c = ModelConfig(vocab_size=3, block_size=8, n_layer=2, n_head=2, n_embd=8, abs_pos=False)
    new_c = ModelConfig(**{**old_c.to_dict(), "ngram_embed": 3})
    a = Transformer(old_c)
    b = Transformer(new_c)
    b.load_state_dict(grow_network(Transformer(new_c).state_dict(), a.state_dict(), old_c, new_c))
    x = torch.randint(0, 4, (2, 8))
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=0)
    assert b.wne.weight.shape == (3 * 5 ** 2, 8) and not b.wne.weight.any()
    b(x).log_softmax(-1)[:, :, 0].sum().backward()
    assert b.wne.weight.grad.abs().max() > 0
    other = ModelConfig(**{**old_c.to_dict(), "ngram_embed": 2})
    with pytest.raises(ValueError, match="added, not changed or removed"):
        grow_network(Transformer(other).state_dict(), b.state_dict(), new_c, other)
    with pytest.raises(ValueError, match="added, not changed or removed"):
        grow_network(a.state_dict(), b.state_dict(), new_c, old_c)
    path2 = tmp_path / "new.pt"
    save_checkpoint(path2, b, kind="mdm", step=0, seed=0, L=8)
    loaded, _ = load_checkpoint(path2)
    assert loaded.config.ngram_embed == 3 and torch.equal(loaded(x), b(x))


@pytest.mark.parametrize("bad", [1, -1, True, 2.0, "3"])
def test_bad_orders_are_refused(bad):
    with pytest.raises(ValueError, match="ngram_embed: expected 0 \\(off\\) or an n-gram order"):
        ModelConfig(vocab_size=3, block_size=8, n_layer=1, n_head=2, n_embd=8, ngram_embed=bad)


def test_tables_too_large_are_refused_with_their_size():
    with pytest.raises(ValueError, match=r"would have 6,250,000 rows \(1 x \(V \+ 2\)\^4 with V = 48\)"):
        ModelConfig(vocab_size=48, block_size=8, n_layer=1, n_head=2, n_embd=8, causal=True, ngram_embed=5)
    assert ModelConfig(vocab_size=48, block_size=8, n_layer=1, n_head=2, n_embd=8, ngram_embed=3).ngram_rows == 3 * 50 ** 2


def test_gpu_run_gives_each_ngram_language_tables_of_its_order():
    """``gpu_run --ngram-embed``: an n-gram language's networks get tables of order n (both kinds),
    an HMM's none; without the flag, none."""
    from neural import gpu_run

    on = gpu_run._parser().parse_args(["--out", "x", "--ngram-embed"])
    off = gpu_run._parser().parse_args(["--out", "x"])
    for kind in ("mdm", "ar"):
        assert gpu_run._model_config(8, 64, kind, on, 4).ngram_embed == 4
        assert gpu_run._model_config(8, 64, kind, on, None).ngram_embed == 0
        assert gpu_run._model_config(8, 64, kind, off, 3).ngram_embed == 0
