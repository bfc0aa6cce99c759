"""Checkpoints that load with ``torch.load(..., weights_only=True)``.

A checkpoint is a dict of primitives and tensors only: ``format``, ``model_config`` (dict),
``state_dict``, ``kind`` (``"mdm"``/``"ar"``), ``step``, ``seed``, ``L``, ``language`` (the
spec string or ``None``), ``language_params`` (n-gram/HMM parameters, so evaluation needs no
preset registry), ``train`` (config and summary), ``versions``.
"""

from __future__ import annotations

import os

import torch

from neural.model import ModelConfig, Transformer

FORMAT = "mdm-theory-neural-1"


def _versions() -> dict:
    import numpy as np

    from importlib.metadata import PackageNotFoundError, version

    try:
        pkg = version("mdm-theory")
    except PackageNotFoundError:  # a source tree that is not installed (e.g. the GPU machine's copy)
        pkg = None
    return {"torch": torch.__version__, "numpy": np.__version__, "mdm_theory": pkg}


def _plain(obj):
    """Recursively turn tuples into lists, keep primitives/tensors; reject anything else."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, str):
        return str(obj)  # also str subclasses such as torch.torch_version.TorchVersion
    if obj is None or isinstance(obj, (bool, int, float)) or torch.is_tensor(obj):
        return obj
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return obj.item()
    raise TypeError(f"checkpoint: cannot store {type(obj).__name__} (only primitives, lists, dicts, tensors)")


def save_checkpoint(path, net: Transformer, *, kind: str, step: int, seed: int, L: int, language=None,
                    language_params=None, train=None, dtype=None) -> int:
    """Write a checkpoint; ``dtype`` (e.g. ``torch.bfloat16``) stores weights smaller. Returns its size in bytes."""
    if kind not in ("mdm", "ar"):
        raise ValueError(f"checkpoint kind: expected 'mdm' or 'ar', got {kind!r}")
    state = {k: (v.detach().to("cpu", dtype=dtype) if dtype is not None and v.is_floating_point() else v.detach().cpu())
             for k, v in net.state_dict().items()}
    ckpt = {
        "format": FORMAT,
        "kind": kind,
        "model_config": net.config.to_dict(),
        "state_dict": state,
        "step": int(step),
        "seed": int(seed),
        "L": int(L),
        "language": None if language is None else str(language),
        "language_params": language_params,
        "train": _plain(train or {}),
        "versions": _versions(),
    }
    torch.save(_plain(ckpt), os.fspath(path))
    return os.path.getsize(path)


def load_checkpoint(path, *, map_location="cpu"):
    """Load a checkpoint safely; returns ``(net, ckpt)`` with the model in eval mode, float32 weights."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not an mdm-theory neural checkpoint (format {FORMAT!r})")
    net = Transformer(ModelConfig(**ckpt["model_config"]))
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()})
    net.to(map_location).eval()
    return net, ckpt


def checkpoint_language(ckpt):
    """The language a checkpoint was trained on (stored parameters first, else its spec)."""
    from neural.data import language_from_dict, resolve_language

    if ckpt.get("language_params"):
        return language_from_dict(ckpt["language_params"])
    if ckpt.get("language"):
        return resolve_language(ckpt["language"])
    raise ValueError("checkpoint stores neither language parameters nor a language spec")
