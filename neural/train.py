"""Training until a target, not for a fixed number of epochs.

The AR model stops when its validation NLL per token is within ``target_rel`` (default 2%) of the
language's entropy rate, the MDM when its validation negative ELBO per token is within 5%
(the ELBO of the exact conditionals equals the entropy rate, see :mod:`neural.diffusion`),
or at ``max_steps`` / ``max_seconds``, whichever comes first. AdamW, cosine learning rate with
linear warm-up over ``warmup_frac`` of ``max_steps``, gradient clipping; bf16 autocast on CUDA,
float32 on CPU.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from neural.ar import ar_log_probs, ar_loss
from neural.data import DataStream, entropy_rate, validation_set
from neural.diffusion import SCHEDULES, elbo_terms, mdm_loss, subs_log_probs
from neural.model import ModelConfig, Transformer

DEFAULT_TARGET = {"ar": 0.02, "mdm": 0.05}


@dataclass
class TrainConfig:
    """Optimisation and stopping settings (plain primitives; stored in checkpoints)."""

    kind: str = "mdm"
    L: int = 512
    batch_size: int = 64
    lr: float = 3e-4
    betas: tuple = (0.9, 0.999)
    weight_decay: float = 0.0
    warmup_frac: float = 0.1
    max_steps: int = 2000
    max_seconds: float | None = None
    grad_clip: float = 1.0
    target_rel: float | None = None
    eval_every: int = 50
    val_size: int = 256
    val_draws: int = 2
    schedule: str = "linear"
    antithetic: bool = True
    t_eps: float = 1e-3
    seed: int = 0
    device: str = "cpu"
    autocast: str | None = None  # "bf16" or None; default: bf16 on CUDA, none on CPU

    def __post_init__(self):
        if self.kind not in ("mdm", "ar"):
            raise ValueError(f"TrainConfig.kind: expected 'mdm' or 'ar', got {self.kind!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"TrainConfig.schedule: expected one of {SCHEDULES}, got {self.schedule!r}")
        for name in ("L", "batch_size", "max_steps", "eval_every", "val_size", "val_draws"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"TrainConfig.{name}: expected a positive integer, got {v!r}")
        if not (0.0 <= self.warmup_frac < 1.0):
            raise ValueError(f"TrainConfig.warmup_frac: expected 0 <= value < 1, got {self.warmup_frac}")
        if self.target_rel is None:
            self.target_rel = DEFAULT_TARGET[self.kind]
        if self.autocast not in (None, "bf16"):
            raise ValueError(f"TrainConfig.autocast: expected 'bf16' or None, got {self.autocast!r}")
        self.betas = tuple(float(b) for b in self.betas)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


@dataclass
class TrainResult:
    net: Transformer
    model_config: ModelConfig
    train_config: TrainConfig
    entropy: dict
    history: list = field(default_factory=list)
    reached: bool = False
    reached_step: int | None = None
    reached_seconds: float | None = None
    steps: int = 0
    seconds: float = 0.0
    final_val: float = math.nan
    stop_reason: str = ""

    def summary(self) -> dict:
        return {
            "kind": self.train_config.kind,
            "entropy_rate": self.entropy,
            "target_rel": self.train_config.target_rel,
            "reached": self.reached,
            "reached_step": self.reached_step,
            "reached_seconds": self.reached_seconds,
            "steps": self.steps,
            "seconds": self.seconds,
            "final_val_per_token": self.final_val,
            "final_ratio_to_entropy": self.final_val / self.entropy["value"],
            "stop_reason": self.stop_reason,
            "num_parameters": self.net.num_parameters(),
            "history": self.history,
        }


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up over ``warmup_frac * max_steps`` then cosine decay to 0 at ``max_steps``."""
    warm = int(round(cfg.warmup_frac * cfg.max_steps))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    prog = (step - warm) / max(1, cfg.max_steps - warm)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, prog)))


def _autocast_dtype(cfg: TrainConfig, device: torch.device):
    if cfg.autocast == "bf16" or (cfg.autocast is None and device.type == "cuda"):
        return torch.bfloat16
    return None


@torch.no_grad()
def validate(net, val: torch.Tensor, cfg: TrainConfig, *, autocast_dtype=None, batch_size=64) -> dict:
    """Validation NLL per token (AR, exact) or negative ELBO per token (MDM, fixed-seed draws)."""
    was_training = net.training
    net.eval()
    device = val.device
    g = torch.Generator(device).manual_seed(cfg.seed + 7919)
    vals = []
    with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        for _ in range(1 if cfg.kind == "ar" else cfg.val_draws):
            for s in range(0, val.shape[0], batch_size):
                x0 = val[s : s + batch_size]
                if cfg.kind == "ar":
                    vals.append(-ar_log_probs(net, x0).double().sum(1) / x0.shape[1])
                else:
                    def fn(x_t):
                        return subs_log_probs(net(x_t), x_t, net.config.mask_id)

                    vals.append(elbo_terms(fn, x0, schedule=cfg.schedule, generator=g, antithetic=cfg.antithetic,
                                           eps=cfg.t_eps, mask_id=net.config.mask_id).double() / x0.shape[1])
    v = torch.cat(vals).cpu().numpy()
    net.train(was_training)
    return {"mean": float(v.mean()), "stderr": float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else math.inf}


def train(lang, model_config: ModelConfig, cfg: TrainConfig, *, log=None) -> TrainResult:
    """Train an MDM (``cfg.kind == "mdm"``) or an AR model on exact samples of ``lang``."""
    if model_config.vocab_size != lang.vocab_size:
        raise ValueError(f"model vocab_size {model_config.vocab_size} != language vocabulary {lang.vocab_size}")
    if model_config.causal != (cfg.kind == "ar"):
        raise ValueError(f"ModelConfig.causal = {model_config.causal} does not match kind {cfg.kind!r}")
    if cfg.L > model_config.block_size:
        raise ValueError(f"L = {cfg.L} exceeds block_size = {model_config.block_size}")
    device = torch.device(cfg.device)
    ac = _autocast_dtype(cfg, device)
    ss = np.random.SeedSequence(cfg.seed)
    data_seed, val_seed, ent_seed = ss.spawn(3)
    entropy = entropy_rate(lang, cfg.L, rng=np.random.default_rng(ent_seed))
    val = torch.from_numpy(validation_set(lang, cfg.val_size, cfg.L, rng=np.random.default_rng(val_seed))).to(device)
    torch.manual_seed(cfg.seed)  # weight init only
    net = Transformer(model_config).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    gen = torch.Generator(device).manual_seed(cfg.seed + 1)
    stream = DataStream(lang, cfg.L, cfg.batch_size, rng=np.random.default_rng(data_seed), device=device,
                        prefetch=4 if device.type == "cuda" else 0)
    target = entropy["value"] * (1.0 + cfg.target_rel)
    res = TrainResult(net=net, model_config=model_config, train_config=cfg, entropy=entropy)
    t0 = time.perf_counter()
    net.train()
    step, last_loss = 0, math.nan
    while True:
        elapsed = time.perf_counter() - t0
        if step % cfg.eval_every == 0 or step == cfg.max_steps or (cfg.max_seconds and elapsed >= cfg.max_seconds):
            v = validate(net, val, cfg, autocast_dtype=ac)
            row = {"step": step, "seconds": round(elapsed, 3),
                   "train_loss": None if math.isnan(last_loss) else last_loss, "val": v["mean"],
                   "val_stderr": v["stderr"], "ratio": v["mean"] / entropy["value"]}
            res.history.append(row)
            res.final_val = v["mean"]
            if log is not None:
                log(f"[{cfg.kind}] step {step} t={elapsed:.1f}s loss={last_loss:.4f} val={v['mean']:.4f} "
                    f"ratio={row['ratio']:.4f}")
            if v["mean"] <= target and step > 0:
                res.reached, res.reached_step, res.reached_seconds = True, step, elapsed
                res.stop_reason = "target"
                break
            if step >= cfg.max_steps:
                res.stop_reason = "max_steps"
                break
            if cfg.max_seconds and elapsed >= cfg.max_seconds:
                res.stop_reason = "max_seconds"
                break
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        x0 = next(stream)
        with torch.autocast(device.type, dtype=ac, enabled=ac is not None):
            if cfg.kind == "ar":
                loss = ar_loss(net, x0)
            else:
                loss = mdm_loss(net, x0, schedule=cfg.schedule, generator=gen, antithetic=cfg.antithetic,
                                eps=cfg.t_eps)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        last_loss = float(loss.detach())
        step += 1
    stream.close()
    res.steps = step
    res.seconds = time.perf_counter() - t0
    net.eval()
    return res
