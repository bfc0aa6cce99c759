"""A small nanoGPT-style transformer for both the MDM (bidirectional) and the AR baseline (causal).

Token ids ``0..V-1`` are the language's tokens; id ``V`` is the extra input token: the mask
``[m]`` for the MDM, the beginning-of-sequence token for the AR model. The output head has ``V``
classes only, so the mask token can never be predicted (the "mask logit = -inf" half of MDLM's
SUBS parameterisation, see :mod:`neural.diffusion`).

Positions are rotary (RoPE) in both models, so that the MDM and the AR baseline have exactly the
same parameters: with learned absolute positions *instead of* rotary ones the MDM stalls at the
unigram level (shared/notes/FIELD.md, H100 calibration).

Rotary attention alone cannot tell a bidirectional model *where* it is when every input is the
mask: the scores depend only on offsets and every value is the same, so the network gives every
position the same law. A language whose first tokens have another law than the rest (an n-gram's
initial distribution, with its zeros) is then out of reach at that context: the paper-2gram MDM
leaked 0.445 at position 0 of the all-masked input, which alone is 1.07e-4 per masked token at
L = 64 (neural/README: a 2026-12-07 finding). ``abs_pos`` adds a learned absolute position
embedding on top of rotary, started at zero (so a warm start keeps the network's function, and a
fresh one begins as the rotary-only model did).

``ngram_embed = n`` (0: off) adds *local n-gram embeddings*: for an n-gram language, the exact
conditional of one masked token between revealed neighbours is a sum of ``n`` table lookups,
``log p(x_i | x_{i-n+1..i-1}) + sum_k log p(x_{i+k} | window ending at i+k)``, each a function of
``x_i`` and the ``n - 1`` other tokens of one length-``n`` window through ``i``. The bidirectional
network therefore gets one learned table per such window (``n`` tables, each indexed by the
window's other ``n - 1`` tokens over ``V + 2`` symbols: the tokens, the mask and "outside the
sequence"), and the causal one a table over its last ``n - 1`` inputs. A transformer that has to
discover those lookups through attention did not, on CPU (the 4-gram MDMs' single-masked-token KL
was 21-26% of H; reports/neural/README.md, fifteenth session). The tables start at zero, so a
warm start keeps the network's function (:func:`grow_network`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ModelConfig:
    """Transformer hyper-parameters (plain primitives, so checkpoints load with ``weights_only``).

    Parameters
    ----------
    vocab_size : int
        ``V``, the language's vocabulary; the embedding has ``V + 1`` rows (mask / BOS = ``V``).
    block_size : int
        Longest sequence the rotary tables cover (the training length ``L``).
    causal : bool
        ``True`` for the AR baseline, ``False`` for the bidirectional MDM.
    mlp_ratio : int
        Hidden units of each block's MLP per model dimension (GPT-2's 4). Checkpoints written
        before the field existed load with 4.
    abs_pos : bool
        Add a learned absolute position embedding (zero at initialisation) to the token
        embedding, on top of the rotary attention (see the module docstring). Checkpoints written
        before the field existed load without it (:meth:`from_dict`).
    ngram_embed : int
        ``n >= 2`` adds the local n-gram embedding tables of the module docstring (``n`` tables of
        ``(V + 2) ** (n - 1)`` rows for the bidirectional model, one for the causal one, zero at
        initialisation); 0 (the default, and what older checkpoints load with) adds none.
    """

    vocab_size: int
    block_size: int = 512
    n_layer: int = 8
    n_head: int = 8
    n_embd: int = 512
    causal: bool = False
    dropout: float = 0.0
    rope_base: float = 10000.0
    mlp_ratio: int = 4
    abs_pos: bool = True
    ngram_embed: int = 0

    #: Values of fields that checkpoints written before the field existed were built with.
    LEGACY = {"mlp_ratio": 4, "abs_pos": False, "ngram_embed": 0}
    #: Most rows all local n-gram tables together may have (2**22 rows of n_embd floats).
    MAX_NGRAM_ROWS = 1 << 22

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "mlp_ratio"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"ModelConfig.{name}: expected a positive integer, got {v!r}")
        if self.n_embd % self.n_head or (self.n_embd // self.n_head) % 2:
            raise ValueError(
                f"ModelConfig: n_embd = {self.n_embd} must split into n_head = {self.n_head} heads of even size (rotary)"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelConfig.dropout: expected 0 <= dropout < 1, got {self.dropout}")
        if not isinstance(self.causal, bool) or not isinstance(self.abs_pos, bool):
            raise ValueError(f"ModelConfig: causal and abs_pos must be True or False, got {self.causal!r}, "
                             f"{self.abs_pos!r}")
        n = self.ngram_embed
        if isinstance(n, bool) or not isinstance(n, int) or n < 0 or n == 1:
            raise ValueError(f"ModelConfig.ngram_embed: expected 0 (off) or an n-gram order n >= 2, got {n!r}")
        if n and self.ngram_rows > self.MAX_NGRAM_ROWS:
            raise ValueError(f"ModelConfig.ngram_embed = {n}: the local n-gram tables would have {self.ngram_rows:,} "
                             f"rows ({self.ngram_tables} x (V + 2)^{n - 1} with V = {self.vocab_size}), more than "
                             f"{self.MAX_NGRAM_ROWS:,}; use a smaller order or none")

    @property
    def ngram_tables(self) -> int:
        """Number of local n-gram tables: ``n`` windows through a position (bidirectional), one (causal)."""
        return 0 if not self.ngram_embed else (1 if self.causal else self.ngram_embed)

    @property
    def ngram_rows(self) -> int:
        """Rows of all local n-gram tables together, ``tables * (V + 2) ** (n - 1)``."""
        return 0 if not self.ngram_embed else self.ngram_tables * (self.vocab_size + 2) ** (self.ngram_embed - 1)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """The configuration stored as ``d`` (a checkpoint's or a training state's ``model_config``);
        a field it lacks takes the value of the networks written before that field existed."""
        return cls(**{**cls.LEGACY, **d})

    @property
    def mask_id(self) -> int:
        """Id of the extra input token (mask for the MDM, BOS for the AR model)."""
        return self.vocab_size

    def to_dict(self) -> dict:
        return asdict(self)


def _rotary_tables(T: int, head_dim: int, base: float, device=None):
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float64, device=device) / head_dim))  # (D/2,)
    ang = torch.arange(T, dtype=torch.float64, device=device)[:, None] * inv[None, :]  # (T, D/2)
    return ang.cos().float(), ang.sin().float()


def apply_rotary(x, cos, sin):
    """Rotate pairs ``(x[..., :D/2], x[..., D/2:])`` by the position angles; x (B, H, T, D), cos/sin (T, D/2)."""
    d = x.shape[-1] // 2
    x1, x2 = x[..., :d], x[..., d:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class KVCache:
    """Pre-allocated keys and values of every layer for incremental causal decoding."""

    def __init__(self, config: ModelConfig, batch: int, max_len: int, *, device, dtype):
        hd = config.n_embd // config.n_head
        shape = (config.n_layer, batch, config.n_head, max_len, hd)
        self.k = torch.zeros(shape, device=device, dtype=dtype)  # (layers, B, H, T_max, D)
        self.v = torch.zeros(shape, device=device, dtype=dtype)  # (layers, B, H, T_max, D)
        # the inputs so far, kept only for local n-gram tables: a new token's rows read the ones before it
        self.tokens = (torch.zeros((batch, max_len), device=device, dtype=torch.long)  # (B, T_max)
                       if config.ngram_embed else None)
        self.pos = 0
        self.max_len = max_len


class SelfAttention(nn.Module):
    def __init__(self, config: ModelConfig, layer: int):
        super().__init__()
        self.n_head = config.n_head
        self.causal = config.causal
        self.layer = layer
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=False)

    def forward(self, x, cos, sin, cache: KVCache | None = None):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, D)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, D)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        drop = self.dropout if self.training else 0.0
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, dropout_p=drop)  # (B, H, T, D)
        else:
            p = cache.pos
            cache.k[self.layer, :, :, p : p + T] = k.to(cache.k.dtype)
            cache.v[self.layer, :, :, p : p + T] = v.to(cache.v.dtype)
            kk = cache.k[self.layer, :, :, : p + T].to(q.dtype)  # (B, H, p+T, D)
            vv = cache.v[self.layer, :, :, : p + T].to(q.dtype)  # (B, H, p+T, D)
            if T > 1 and p > 0:
                raise ValueError("KV cache: multi-token chunks are supported only at position 0 (prefill)")
            y = F.scaled_dot_product_attention(q, kk, vv, is_causal=T > 1)  # (B, H, T, D)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.proj(y)


class MLP(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, config.mlp_ratio * config.n_embd, bias=False)
        self.proj = nn.Linear(config.mlp_ratio * config.n_embd, config.n_embd, bias=False)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    def __init__(self, config: ModelConfig, layer: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.attn = SelfAttention(config, layer)
        self.ln2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin, cache=None):
        x = x + self.attn(self.ln1(x), cos, sin, cache)
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """Pre-LayerNorm transformer with rotary attention; ``forward(idx) -> logits (B, T, V)``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size + 1, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd) if config.abs_pos else None
        self.wne = nn.Embedding(config.ngram_rows, config.n_embd) if config.ngram_embed else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([Block(config, i) for i in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        cos, sin = _rotary_tables(config.block_size, config.n_embd // config.n_head, config.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)  # (block_size, D/2)
        self.register_buffer("rope_sin", sin, persistent=False)  # (block_size, D/2)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):  # GPT-2 scaled init of residual projections
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))
        if self.wpe is not None:  # starts as the rotary-only network
            nn.init.zeros_(self.wpe.weight)
        if self.wne is not None:  # starts as the network without local n-gram tables
            nn.init.zeros_(self.wne.weight)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx, *, cache: KVCache | None = None):
        """Logits over the ``V`` tokens, (B, T, V), float32 (also under autocast).

        With ``cache`` (causal models only), ``idx`` is the next chunk, placed at ``cache.pos``.
        """
        B, T = idx.shape
        start = 0 if cache is None else cache.pos
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of length {start + T} exceeds block_size = {self.config.block_size}")
        if cache is not None and not self.config.causal:
            raise ValueError("a KV cache only makes sense for a causal (AR) model")
        cos = self.rope_cos[start : start + T]
        sin = self.rope_sin[start : start + T]
        x = self.wte(idx)  # (B, T, C)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(start, start + T, device=idx.device))  # (T, C) broadcast over B
        if self.wne is not None:
            before = None
            if cache is not None:
                cache.tokens[:, start : start + T] = idx
                before = cache.tokens[:, max(0, start - (self.config.ngram_embed - 2)) : start]
            x = x + self.wne(local_ngram_index(idx, self.config, before=before)).sum(dim=2)  # (B, T, C)
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, cos, sin, cache)
        if cache is not None:
            cache.pos += T
        return self.head(self.ln_f(x)).float()  # (B, T, V)


def local_ngram_index(idx, config: ModelConfig, *, before=None):
    """Rows of the local n-gram tables each position reads, (B, T, tables), long.

    Symbols: the token ids ``0..V-1``, ``V`` (mask, or BOS for the causal model) and ``V + 1`` for
    "outside the sequence". Bidirectional (``n`` tables): table ``a`` holds the window
    ``i - a .. i - a + n - 1`` without ``i``. Causal (one table): the inputs ``i - n + 2 .. i``.
    ``before`` (causal, with a KV cache) holds the inputs that precede ``idx`` (up to ``n - 2``).
    """
    n, V = config.ngram_embed, config.vocab_size
    B, T = idx.shape

    def row(digits):  # the row of n - 1 symbols, little-endian in base V + 2
        return sum(d * (V + 2) ** k for k, d in enumerate(digits))

    if config.causal:
        left = idx.new_full((B, n - 2), V + 1)
        if before is not None:  # the last n - 2 of (outside..., before)
            left = torch.cat([left, before], dim=1)[:, before.shape[1]:]
        full = torch.cat([left, idx], dim=1)  # (B, n - 2 + T)
        return row(full[:, k : k + T] for k in range(n - 1))[:, :, None]  # (B, T, 1)
    P = n - 1
    padded = F.pad(idx, (P, P), value=V + 1)  # (B, T + 2P)
    size = (V + 2) ** (n - 1)
    return torch.stack([row(padded[:, P + j - a : P + j - a + T] for j in range(n) if j != a) + a * size
                        for a in range(n)], dim=2)  # (B, T, n)


def training_memory_lower_bound(config: ModelConfig, batch_size: int) -> dict:
    """Bytes that training ``config`` on batches of ``batch_size`` sequences needs at the least.

    Counted: the float32 weights, their gradients and AdamW's two moments (16 bytes per
    parameter; the EMA copy is left out), and the activations a backward pass keeps per block
    (the input, q, k, v, the attention output, the MLP input and its hidden units before and
    after the nonlinearity: ``(6 + 2 mlp_ratio) B L C`` numbers) at 2 bytes each (bf16 autocast;
    float32 needs twice that), plus the float32 logits. The parameters are counted on the
    ``meta`` device (nothing is allocated). A lower bound, so refusing a run whose bound exceeds
    the machine never refuses one that fits.

    Returns ``{"parameters", "state_bytes", "activation_bytes", "bytes"}``.
    """
    with torch.device("meta"):
        P = Transformer(config).num_parameters()
    B, T, C = int(batch_size), config.block_size, config.n_embd
    state = 16 * P
    activations = 2 * config.n_layer * (6 + 2 * config.mlp_ratio) * B * T * C + 4 * B * T * config.vocab_size
    return {"parameters": P, "state_bytes": state, "activation_bytes": activations, "bytes": state + activations}


#: The fields in which a warm start may differ from its checkpoint (:func:`grow_network`), and the rule in words.
GROWABLE = ("mlp_ratio", "abs_pos", "ngram_embed")
GROWTH_RULE = "a larger mlp_ratio, abs_pos turned on, or ngram_embed added"


def grow_network(fresh: dict, old: dict, old_config: ModelConfig, new_config: ModelConfig) -> dict:
    """Weights of ``new_config`` that compute exactly what ``old`` computes under ``old_config``,
    where the two differ only in a larger ``mlp_ratio``, ``abs_pos`` turned on and/or local n-gram
    tables added (``ngram_embed`` from 0 to n): a warm start into a wider MLP, one that can tell
    absolute positions, or one with the n-gram lookups of the module docstring.

    ``fresh`` is the state dict of a newly initialised ``Transformer(new_config)``. Every weight
    is copied from ``old``. Each block's MLP keeps its old hidden units first and adds the fresh
    ones with their fresh input weights and **zero** output weights, so the network's function
    is unchanged (``proj @ gelu(fc x)`` gains terms ``0 * gelu(.)``) while the new units get
    gradients from the first step on (as the output weights move off zero). A new absolute
    position embedding and new n-gram tables start at zero (as fresh ones do), which adds nothing.
    """
    a, b = old_config.to_dict(), new_config.to_dict()
    diff = sorted(k for k in a if k not in GROWABLE and a[k] != b[k])
    if diff:
        raise ValueError(f"grow_network: the networks differ in {diff}, not only in {' / '.join(GROWABLE)}")
    if old_config.ngram_embed and old_config.ngram_embed != new_config.ngram_embed:
        raise ValueError(f"grow_network: local n-gram tables can be added, not changed or removed "
                         f"(ngram_embed {old_config.ngram_embed} -> {new_config.ngram_embed})")
    if new_config.mlp_ratio < old_config.mlp_ratio:
        raise ValueError(f"grow_network: mlp_ratio can only grow ({old_config.mlp_ratio} -> {new_config.mlp_ratio})")
    if old_config.abs_pos and not new_config.abs_pos:
        raise ValueError("grow_network: abs_pos can be turned on, not off (that would change the function)")
    h = old_config.mlp_ratio * old_config.n_embd
    out = {}
    for name, w in fresh.items():
        if name in ("wpe.weight", "wne.weight") and name not in old:
            out[name] = torch.zeros_like(w)
            continue
        v = old[name]
        if name.endswith("mlp.fc.weight"):  # (hidden, n_embd): old units first, fresh ones after
            w = w.clone()
            w[:h] = v
        elif name.endswith("mlp.proj.weight"):  # (n_embd, hidden): the fresh units' outputs start at zero
            w = torch.zeros_like(w)
            w[:, :h] = v
        else:
            w = v.clone()
        out[name] = w
    return out
