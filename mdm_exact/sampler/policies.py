r"""Adaptive unmasking policies: the ONE definition shared by every sampler.

A *policy* decides, at each step of the masked-diffusion sampler, which still-masked positions
are revealed and which tokens they get, from the per-position conditionals
:math:`c_i(v) = q(x_i = v \mid x_R)` of the current state (issue 16, "Semantics"). The same
:class:`Policy` object drives

* the exact engine (:mod:`mdm_exact.sampler.adaptive_exact`), which enumerates the policy's
  randomness with :meth:`Policy.count_law`, :func:`greedy_order`, :meth:`Policy.adaptive_set`
  and :meth:`Policy.token_law`;
* the Monte Carlo engine (:mod:`mdm_exact.sampler.adaptive_mc`) and the neural sampler, which
  call :meth:`Policy.select` on a batch with pre-drawn uniforms (float64 NumPy arrays).

Scores (higher is picked first; always on the *untempered* :math:`c_i`)
-----------------------------------------------------------------------
``confidence``: :math:`\max_v c_i(v)`; ``margin``: top-1 minus top-2 probability;
``entropy``: :math:`-H(c_i)` in nats; ``llada``: :math:`c_i` of a token drawn first at every
candidate (LLaDA low-confidence remasking: the chosen positions keep their draw, the others are
re-masked); ``random``: a uniformly random subset (today's content-blind rules).

Ties: picks are greedy; at each pick, among the candidates whose score is within
:data:`TIE_ATOL` of the best remaining score, the lowest position index is taken
(:func:`greedy_order`), so floating-point noise never changes the choice.

Counts
------
* ``sizes`` (``--step-sizes``): ``min(s_k, #candidates)`` at step ``k``;
* ``schedule`` (``--steps N`` with a schedule): ``Binomial(#candidates, r_k)``,
  :math:`r_k = p^{(k)} / \sum_{j \ge k} p^{(j)}`; with ``random`` this is exactly
  :class:`~mdm_exact.sampler.schedules.ScheduleSteps`;
* ``block-sizes`` (``--steps N --block-length b``): each of the ``ceil(L/b)`` blocks gets
  ``N / ceil(L/b)`` steps with LLaDA's balanced sizes inside the block;
* ``threshold:g``: every candidate with :math:`\max_v c_i(v) \ge g - 10^{-9}`, at least the
  single best (Fast-dLLM);
* ``eb:g``: candidates sorted by entropy ascending (greedy, ties to the lower index); the largest
  prefix of size ``k >= 1`` with :math:`\sum H - \max H \le g + 10^{-9}` (EB-sampler,
  Ben-Hamu et al., arXiv:2505.24857).

Blocks: the candidates are the masked positions of the leftmost unfinished block.

Tokens: a revealed position draws from :math:`c_i^{1/T}` renormalised; ``T = 0`` is the argmax
with ties within :data:`TIE_ATOL` to the lowest token id.

NFE: the number of steps that reveal at least one position (a per-sequence cache calls the
network only then).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import entr

from mdm_exact._validate import as_count, as_length, parse_step_sizes
from mdm_exact.sampler.schedules import FixedSizes, RandomOrder, ScheduleSteps, balanced_sizes, schedule

__all__ = [
    "Policy",
    "make_policy",
    "policy_from_options",
    "policy_from_rule",
    "parse_policy",
    "greedy_order",
    "position_scores",
    "token_law",
    "draw_tokens",
    "binomial_count",
    "POLICY_NAMES",
    "SCORES",
    "TIE_ATOL",
]

#: Scores within this distance of the best remaining one count as tied (lowest index wins).
TIE_ATOL = 1e-9
#: Score rules.
SCORES = ("random", "confidence", "margin", "entropy", "llada")
#: Policy names accepted by :func:`parse_policy` (``threshold:G`` and ``eb:G`` carry a number).
POLICY_NAMES = SCORES + ("threshold", "eb")
#: Count rules.
COUNTS = ("sizes", "schedule", "block-sizes", "threshold", "eb")


# ----------------------------------------------------------------------------- primitives
def position_scores(score: str, c, *, tokens=None, u_order=None) -> np.ndarray:
    """Score of every position, shape (n, L), from the untempered conditionals ``c`` (n, L, V).

    ``llada`` needs ``tokens`` (n, L), the draw at every candidate; ``random`` needs
    ``u_order`` (n, L), one uniform key per position (the scores of a random order).
    """
    c = np.asarray(c, dtype=np.float64)
    if score == "confidence":
        return c.max(axis=-1)  # (n, L)
    if score == "margin":
        if c.shape[-1] == 1:
            return c[..., 0].copy()
        top2 = np.partition(c, c.shape[-1] - 2, axis=-1)[..., -2:]  # (n, L, 2)
        return top2[..., 1] - top2[..., 0]  # (n, L)
    if score == "entropy":
        return -entr(c).sum(axis=-1)  # (n, L) -H in nats
    if score == "llada":
        if tokens is None:
            raise ValueError("llada scores need the drawn tokens")
        return np.take_along_axis(c, np.asarray(tokens, dtype=np.int64)[..., None], axis=-1)[..., 0]  # (n, L)
    if score == "random":
        if u_order is None:
            raise ValueError("random scores need u_order")
        return 1.0 - np.asarray(u_order, dtype=np.float64)  # smallest key first
    raise ValueError(f"unknown score {score!r}; expected one of {SCORES}")


def greedy_order(scores, candidates, num_picks=None, *, atol: float = TIE_ATOL) -> np.ndarray:
    """Greedy pick order with tolerant ties, shape (n, num_picks); ``-1`` once a row runs out.

    At each pick, among the remaining candidates whose score is within ``atol`` of the best
    remaining score, the lowest position index is taken.

    Parameters
    ----------
    scores : ndarray, shape (n, L)
    candidates : ndarray of bool, shape (n, L)
    num_picks : int, optional
        Number of picks (default: ``L``).
    """
    s = np.asarray(scores, dtype=np.float64)
    left = np.array(candidates, dtype=bool, copy=True)  # (n, L)
    n, L = s.shape
    k = L if num_picks is None else int(num_picks)
    out = np.full((n, k), -1, dtype=np.int64)  # (n, k)
    rows = np.arange(n)
    for p in range(k):
        has = left.any(axis=1)  # (n,)
        if not has.any():
            break
        best = np.where(left, s, -np.inf).max(axis=1)  # (n,)
        ok = left & (s >= (best - atol)[:, None])  # (n, L)
        pick = np.argmax(ok, axis=1)  # (n,) lowest index among the near-best
        out[:, p] = np.where(has, pick, -1)
        left[rows[has], pick[has]] = False
    return out


def token_law(c, temperature: float) -> np.ndarray:
    """Law of a revealed token, ``c^(1/T)`` renormalised along the last axis (T = 0: argmax).

    ``T = 1`` returns ``c`` itself (already a law). ``T = 0``: one-hot on the lowest token id
    whose probability is within :data:`TIE_ATOL` of the maximum.
    """
    c = np.asarray(c, dtype=np.float64)
    T = float(temperature)
    if T == 1.0:
        return c
    cmax = c.max(axis=-1, keepdims=True)  # (..., 1)
    if T == 0.0:
        first = np.argmax(c >= cmax - TIE_ATOL, axis=-1)  # (...,)
        out = np.zeros_like(c)
        np.put_along_axis(out, first[..., None], 1.0, axis=-1)
        return out
    with np.errstate(divide="ignore"):
        w = np.where(c > 0, np.exp((np.log(c) - np.log(cmax)) / T), 0.0)  # (..., V) max entry 1
    return w / w.sum(axis=-1, keepdims=True)


def draw_tokens(law, u) -> np.ndarray:
    """Inverse-CDF draw, shape (...): first ``v`` with ``cdf[v] > u cdf[-1]`` (never zero mass)."""
    w = np.asarray(law, dtype=np.float64)
    cdf = np.cumsum(w, axis=-1)  # (..., V)
    thr = np.asarray(u, dtype=np.float64) * cdf[..., -1]  # (...,)
    tok = (cdf <= thr[..., None]).sum(axis=-1)  # (...,)
    V = w.shape[-1]
    over = tok >= V
    if np.any(over):  # u * total rounded above the last cumulative value
        last = V - 1 - np.argmax((w > 0)[..., ::-1], axis=-1)
        tok = np.where(over, last, tok)
    return tok.astype(np.int64)


def binomial_count(n_cand, r, u) -> np.ndarray:
    """Inverse-CDF draw of ``Binomial(n_cand, r)`` from uniforms ``u``; shapes broadcast.

    The pmf is evaluated with ``lgamma`` in log space and summed from 0; ``r = 0`` gives 0 and
    ``r = 1`` gives ``n_cand``. Rounding of the total below ``u`` returns the largest count.
    """
    n_cand = np.asarray(n_cand, dtype=np.int64)
    u = np.asarray(u, dtype=np.float64)
    n_cand, u = np.broadcast_arrays(n_cand, u)
    out = np.empty(n_cand.shape, dtype=np.int64)
    r = float(r)
    for idx in np.ndindex(n_cand.shape):
        out[idx] = _binomial_count_scalar(int(n_cand[idx]), r, float(u[idx]))
    return out


def _binomial_count_scalar(n: int, r: float, u: float) -> int:
    if n == 0 or r <= 0.0:
        return 0
    if r >= 1.0:
        return n
    lr, l1r = math.log(r), math.log1p(-r)
    lgn = math.lgamma(n + 1.0)
    acc = 0.0
    for j in range(n + 1):
        acc += math.exp(lgn - math.lgamma(j + 1.0) - math.lgamma(n - j + 1.0) + j * lr + (n - j) * l1r)
        if u < acc:
            return j
    return n


def binomial_pmf(n: int, r: float) -> np.ndarray:
    """``Binomial(n, r)`` pmf over ``0..n``, shape (n+1,), exact at ``r in {0, 1}``."""
    out = np.zeros(n + 1)
    if r <= 0.0:
        out[0] = 1.0
        return out
    if r >= 1.0:
        out[n] = 1.0
        return out
    j = np.arange(n + 1)
    out[:] = [math.comb(n, int(i)) for i in j]
    return out * r**j * (1.0 - r) ** (n - j)


# ----------------------------------------------------------------------------- policy
@dataclass(frozen=True)
class Policy:
    """One unmasking policy (see the module docstring); build with :func:`make_policy`.

    Attributes
    ----------
    score : str
        One of :data:`SCORES`.
    count : str
        One of ``sizes``, ``schedule``, ``block-sizes``, ``threshold``, ``eb``.
    L : int
        Sequence length the policy was built for.
    sizes : tuple of int
        Per-step sizes (``sizes``; for ``block-sizes`` the balanced size of step ``k`` within
        its block).
    probs : tuple of float
        ``p^(k)`` of the schedule (``schedule``).
    gamma : float or None
        ``g`` of ``threshold:g`` / ``eb:g``.
    block_length : int or None
        Semi-autoregressive block length ``b``.
    temperature : float
        Token temperature ``T >= 0``.
    label : str
        The schedule name (``linear``, ``cosine``, ...) for ``schedule`` counts.
    """

    score: str
    count: str
    L: int
    sizes: tuple = ()
    probs: tuple = ()
    gamma: float | None = None
    block_length: int | None = None
    temperature: float = 1.0
    label: str = ""

    def __post_init__(self):
        if self.score not in SCORES:
            raise ValueError(f"policy score: expected one of {SCORES}, got {self.score!r}")
        if self.count not in COUNTS:
            raise ValueError(f"policy count: expected one of {COUNTS}, got {self.count!r}")
        T = float(self.temperature)
        if not (math.isfinite(T) and T >= 0):
            raise ValueError(f"temperature: expected T >= 0, got {self.temperature}")
        object.__setattr__(self, "temperature", T)

    # ------------------------------------------------------------------ structure
    @property
    def name(self) -> str:
        if self.count in ("threshold", "eb"):
            return f"{self.count}:{self.gamma:g}"
        return self.score

    @property
    def adaptive_count(self) -> bool:
        """True for ``threshold`` / ``eb`` (the count depends on the conditionals)."""
        return self.count in ("threshold", "eb")

    @property
    def num_steps(self) -> int:
        """Number of steps (``threshold`` / ``eb``: the most it can take, ``L``)."""
        if self.count == "schedule":
            return len(self.probs)
        if self.count in ("sizes", "block-sizes"):
            return len(self.sizes)
        return self.L

    @property
    def fresh_token_uniforms(self) -> bool:
        """``llada`` draws at every candidate every step, so it needs new uniforms per step;
        the others draw each position once (when it is revealed) from one uniform per position."""
        return self.score == "llada"

    def reveal_probability(self, k: int) -> float:
        """``r_k = p^(k) / sum_{j >= k} p^(j)`` (``schedule`` counts; 0-based ``k``)."""
        p = self.probs
        rest = math.fsum(p[k:])
        if k == len(p) - 1 or rest <= 0:
            return 1.0
        return min(1.0, p[k] / rest)

    def candidates(self, revealed) -> np.ndarray:
        """Candidate positions (n, L) bool: masked, and inside the leftmost unfinished block."""
        rev = np.atleast_2d(np.asarray(revealed, dtype=bool))  # (n, L)
        masked = ~rev
        b = self.block_length
        if b is None or b >= rev.shape[1]:
            return masked
        L = rev.shape[1]
        block = np.arange(L) // b  # (L,)
        big = L // b + 2
        first = np.where(masked, block[None, :], big).min(axis=1)  # (n,) leftmost unfinished block
        return masked & (block[None, :] == first[:, None])

    def count_law(self, k: int, n_cand: int) -> np.ndarray:
        """Law of the number of positions revealed at step ``k`` (0-based), shape (n_cand+1,).

        Only for the ``sizes``, ``schedule`` and ``block-sizes`` counts.
        """
        out = np.zeros(n_cand + 1)
        if self.count in ("sizes", "block-sizes"):
            out[min(self.sizes[k], n_cand)] = 1.0
            return out
        if self.count == "schedule":
            return binomial_pmf(n_cand, self.reveal_probability(k))
        raise ValueError(f"count_law: the {self.count} count depends on the conditionals")

    def draw_count(self, k: int, n_cand, u_count) -> np.ndarray:
        """Number of positions revealed at step ``k`` for each row, (n,) int64."""
        n_cand = np.asarray(n_cand, dtype=np.int64)
        if self.count in ("sizes", "block-sizes"):
            return np.minimum(self.sizes[k], n_cand)
        if self.count == "schedule":
            return binomial_count(n_cand, self.reveal_probability(k), u_count)
        raise ValueError(f"draw_count: the {self.count} count depends on the conditionals")

    def adaptive_set(self, c, candidates) -> np.ndarray:
        """Positions revealed by ``threshold`` / ``eb`` (n, L) bool, from the conditionals."""
        c = np.asarray(c, dtype=np.float64)
        cand = np.asarray(candidates, dtype=bool)
        n, L = cand.shape
        has = cand.any(axis=1)
        out = np.zeros((n, L), dtype=bool)
        if self.count == "threshold":
            conf = position_scores("confidence", c)  # (n, L)
            out = cand & (conf >= self.gamma - TIE_ATOL)
            none = has & ~out.any(axis=1)
            if none.any():
                first = greedy_order(conf[none], cand[none], 1)[:, 0]
                out[np.flatnonzero(none), first] = True
            return out
        if self.count == "eb":
            H = entr(c).sum(axis=-1)  # (n, L) entropies in nats
            order = greedy_order(-H, cand)  # (n, L) entropy ascending, ties to the lower index
            valid = order >= 0
            h = np.where(valid, np.take_along_axis(H, np.maximum(order, 0), axis=1), 0.0)  # (n, L)
            tot = np.cumsum(h, axis=1)  # (n, L)
            mx = np.maximum.accumulate(h, axis=1)  # (n, L)
            ok = valid & (tot - mx <= self.gamma + TIE_ATOL)
            kk = ok.sum(axis=1)  # (n,) the criterion is monotone in the prefix size
            keep = np.arange(L)[None, :] < kk[:, None]
            r, j = np.nonzero(keep & valid)
            out[r, order[r, j]] = True
            return out
        raise ValueError(f"adaptive_set: the {self.count} count does not depend on the conditionals")

    def token_law(self, c) -> np.ndarray:
        """Law of a revealed token, ``c^(1/T)`` renormalised (see :func:`token_law`)."""
        return token_law(c, self.temperature)

    # ------------------------------------------------------------------ sampling
    def select(self, c, revealed, k: int, *, u_tok, u_order=None, u_count=None):
        """One step on a batch: which positions to reveal and their tokens.

        Parameters
        ----------
        c : ndarray, shape (n, L, V), float64
            Conditionals at every position (only the candidates' rows are read).
        revealed : ndarray of bool, shape (n, L)
        k : int
            0-based step index.
        u_tok : ndarray, shape (n, L)
            Token uniforms (inverse CDF); for ``llada`` fresh ones every step.
        u_order : ndarray, shape (n, L)
            Random-order keys (``random`` only; the same keys for every step are exact).
        u_count : ndarray, shape (n,)
            Count uniforms (``schedule`` counts only).

        Returns
        -------
        reveal : ndarray of bool, shape (n, L)
        tokens : ndarray of int64, shape (n, L)
            The drawn token at every revealed position (other entries are meaningless).
        """
        c = np.asarray(c, dtype=np.float64)
        cand = self.candidates(revealed)  # (n, L)
        n, L = cand.shape
        tl = self.token_law(c)  # (n, L, V)
        tokens = draw_tokens(tl, u_tok)  # (n, L) a draw at every position
        if self.adaptive_count:
            return self.adaptive_set(c, cand), tokens
        m = self.draw_count(k, cand.sum(axis=1), u_count)  # (n,)
        s = position_scores(self.score, c, tokens=tokens, u_order=u_order)  # (n, L)
        if self.score == "random":
            key = np.where(cand, np.asarray(u_order, dtype=np.float64), np.inf)
            order = np.argsort(key, axis=1, kind="stable")  # (n, L) exact order of the keys
        else:
            order = greedy_order(s, cand, int(m.max(initial=0)))
        reveal = np.zeros((n, L), dtype=bool)
        mm = min(order.shape[1], int(m.max(initial=0)))
        take = np.arange(mm)[None, :] < m[:, None]  # (n, mm)
        r, j = np.nonzero(take)
        reveal[r, order[r, j]] = True
        return reveal, tokens

    @classmethod
    def from_dict(cls, d) -> "Policy":
        """Inverse of :meth:`to_dict` (``Policy.from_dict(p.to_dict()) == p``)."""
        try:
            return cls(score=d["score"], count=d["count"], L=int(d["L"]), sizes=tuple(int(v) for v in d.get("sizes", ())),
                       probs=tuple(float(v) for v in d.get("probs", ())), gamma=d.get("gamma"),
                       block_length=d.get("block_length"), temperature=float(d["temperature"]), label=d.get("schedule", ""))
        except KeyError as exc:
            raise ValueError(f"policy dict: missing key {exc.args[0]!r} (expected the keys of Policy.to_dict())") from None

    def to_dict(self) -> dict:
        d = {
            "policy": self.name,
            "score": self.score,
            "count": self.count,
            "L": self.L,
            "num_steps": self.num_steps if not self.adaptive_count else None,
            "block_length": self.block_length,
            "temperature": self.temperature,
        }
        if self.count in ("sizes", "block-sizes"):
            d["sizes"] = list(self.sizes)
        if self.count == "schedule":
            d["schedule"] = self.label
            d["probs"] = list(self.probs)
        if self.adaptive_count:
            d["gamma"] = self.gamma
        return d


# ----------------------------------------------------------------------------- builders
def parse_policy(text: str):
    """``"confidence"`` -> ``("confidence", None)``; ``"threshold:0.9"`` -> ``("threshold", 0.9)``."""
    if not isinstance(text, str):
        raise ValueError(f"policy: expected a string such as 'confidence' or 'threshold:0.9', got {text!r}")
    name, sep, arg = text.partition(":")
    if name not in POLICY_NAMES:
        raise ValueError(f"policy: unknown policy {name!r}; expected one of random, confidence, margin, entropy, llada, threshold:G, eb:G")
    if name in ("threshold", "eb"):
        if not sep or not arg:
            raise ValueError(f"policy {name!r} needs a number, e.g. '{name}:0.9'")
        try:
            g = float(arg)
        except ValueError:
            raise ValueError(f"policy {name}: expected a number after ':', got {arg!r}") from None
        if name == "threshold" and not (0.0 < g <= 1.0):
            raise ValueError(f"policy threshold:g: expected 0 < g <= 1, got {g}")
        if name == "eb" and not (g >= 0.0 and math.isfinite(g)):
            raise ValueError(f"policy eb:g: expected a finite g >= 0, got {g}")
        return name, g
    if sep:
        raise ValueError(f"policy {name!r} takes no ':' argument (only threshold:G and eb:G do)")
    return name, None


def make_policy(policy: str = "random", *, L, num_steps=None, step_sizes=None, schedule_name: str = "linear",
                block_length=None, temperature: float = 1.0) -> Policy:
    """Build a :class:`Policy` from the user-facing options (the CLI's ``--policy`` etc.).

    Parameters
    ----------
    policy : str
        ``random``, ``confidence``, ``margin``, ``entropy``, ``llada``, ``threshold:G`` or ``eb:G``.
    L : int
        Sequence length.
    num_steps : int, optional
        ``--steps N``: binomial counts from the schedule ``schedule_name`` (or, with
        ``block_length``, balanced sizes inside each block).
    step_sizes : sequence of int, optional
        ``--step-sizes``: fixed sizes ``min(s_k, #candidates)``; they must sum to ``L``.
    schedule_name : str
        ``linear`` or ``cosine`` (with ``num_steps``, no blocks).
    block_length : int, optional
        Semi-autoregressive block length ``b``.
    temperature : float
        ``T >= 0``.

    Raises
    ------
    ValueError
        On every bad combination: ``threshold``/``eb`` with a count option, another policy
        without exactly one of them, blocks whose number does not divide ``N``, step sizes with
        blocks or not summing to ``L``, ``g`` out of range, ``T < 0``.
    """
    L = as_length(L)
    name, g = parse_policy(policy)
    T = float(temperature)
    if not (math.isfinite(T) and T >= 0):
        raise ValueError(f"temperature: expected T >= 0, got {temperature}")
    b = None
    if block_length is not None:
        b = as_count(block_length, "block_length")
    if name in ("threshold", "eb"):
        if num_steps is not None or step_sizes is not None:
            raise ValueError(f"policy {name}:g takes no count option (--steps / --step-sizes); it reveals until done")
        score = "confidence" if name == "threshold" else "entropy"
        return Policy(score=score, count=name, L=L, gamma=float(g), block_length=b, temperature=T)
    if (num_steps is None) == (step_sizes is None):
        raise ValueError(f"policy {name}: expected exactly one of --steps N or --step-sizes s1,...,sN")
    if step_sizes is not None:
        if b is not None:
            raise ValueError("--step-sizes cannot be combined with --block-length; use --steps N (balanced sizes inside each block)")
        rule = FixedSizes(tuple(step_sizes))
        rule.check_length(L)
        return Policy(score=name, count="sizes", L=L, sizes=rule.sizes, block_length=None, temperature=T)
    N = as_count(num_steps, "num_steps")
    if b is not None:
        nb = -(-L // b)
        if N % nb:
            raise ValueError(
                f"--block-length {b}: L = {L} has {nb} blocks, which must divide the number of steps N = {N} evenly"
            )
        spb = N // nb
        sizes = []
        for i in range(nb):
            m = min(b, L - i * b)
            sizes.extend(balanced_sizes(m, spb))
        return Policy(score=name, count="block-sizes", L=L, sizes=tuple(sizes), block_length=b, temperature=T)
    rule = schedule(schedule_name, N)
    return Policy(score=name, count="schedule", L=L, probs=rule.probs, label=rule.label, temperature=T)


def policy_from_rule(score: str, rule, L: int, *, temperature: float = 1.0) -> Policy:
    """A policy with the counts of a content-blind step rule (``ScheduleSteps``, ``FixedSizes``,
    ``RandomOrder``); with ``score="random"`` it is that rule exactly."""
    L = as_length(L)
    if isinstance(rule, ScheduleSteps):
        return Policy(score=score, count="schedule", L=L, probs=rule.probs, label=rule.label, temperature=temperature)
    if isinstance(rule, RandomOrder):
        rule = FixedSizes((1,) * L)
    if isinstance(rule, FixedSizes):
        rule.check_length(L)
        return Policy(score=score, count="sizes", L=L, sizes=rule.sizes, temperature=temperature)
    raise TypeError(f"policy_from_rule: expected ScheduleSteps, FixedSizes or RandomOrder, got {type(rule).__name__}")


def policy_from_options(policy: str, *, L, steps=None, step_sizes=None, schedule_name=None, rule=None, block_length=None,
                        temperature: float = 1.0) -> Policy:
    """:func:`make_policy` from the CLI's raw options (``--policy --steps --step-sizes --schedule
    --rule --block-length --temperature``); ``step_sizes`` may be the ``"s1,s2,..."`` text.

    Raises
    ------
    ValueError
        Besides :func:`make_policy`'s errors: ``--rule`` (use ``--step-sizes 1,...,1`` for one
        position per step in a policy's order), ``--steps`` disagreeing with ``--step-sizes``,
        ``--schedule`` with ``--step-sizes`` or blocks, malformed sizes.
    """
    if rule is not None:
        raise ValueError(f"--policy does not combine with --rule {rule}; the policy chooses the order "
                         f"(one position per step: --step-sizes 1,...,1)")
    sizes = None
    if step_sizes is not None:
        sizes = parse_step_sizes(step_sizes) if isinstance(step_sizes, str) else tuple(step_sizes)
        if steps is not None and steps != len(sizes):
            raise ValueError(f"--steps {steps} disagrees with the {len(sizes)} --step-sizes")
        steps = None
        if schedule_name is not None:
            raise ValueError("--schedule does not combine with --step-sizes")
    if schedule_name is not None and block_length is not None:
        raise ValueError("--schedule does not combine with --block-length (blocks use LLaDA's balanced sizes)")
    if steps is not None:
        steps = as_count(steps, "--steps")
    return make_policy(policy, L=L, num_steps=steps, step_sizes=sizes, schedule_name=schedule_name or "linear",
                       block_length=block_length, temperature=temperature)
