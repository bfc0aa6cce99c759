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
    """Load a checkpoint safely; returns ``(net, ckpt)`` with the model in eval mode, float32 weights.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        For a directory, a truncated or malformed file, a file that is not an mdm-theory
        checkpoint, or one whose configuration, kind, length or weights do not fit together
        (nothing in the file is executed: ``weights_only=True``).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    if not os.path.isfile(path):
        raise ValueError(f"checkpoint {path!r} is a directory, expected a .pt file written by 'neural train'")
    import pickle
    import warnings

    try:
        with warnings.catch_warnings():  # torch warns about unknown pickle protocols of junk files
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(f"checkpoint {path!r} holds objects other than tensors and primitives, or is corrupt; "
                         f"it was refused and nothing in it was run") from None
    except Exception as exc:  # noqa: BLE001 - RuntimeError, OSError, EOFError, KeyError, ... of a bad file
        msg = " ".join(str(exc).split())[:160]
        raise ValueError(f"checkpoint {path!r} cannot be read (truncated, corrupt or not a checkpoint): "
                         f"{type(exc).__name__}: {msg}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not an mdm-theory neural checkpoint (format {FORMAT!r})")
    _check_fields(ckpt, path)
    try:
        net = Transformer(ModelConfig.from_dict(ckpt["model_config"]))
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()})
    except (TypeError, ValueError, RuntimeError, KeyError, AttributeError) as exc:
        msg = " ".join(str(exc).split())[:200]
        raise ValueError(f"checkpoint {path!r}: the model configuration and weights do not fit: {msg}") from None
    net.to(map_location).eval()
    return net, ckpt


def _check_fields(ckpt, path) -> None:
    """Types and consistency of a checkpoint's fields (before anything is built from them)."""
    mc, kind, L = ckpt.get("model_config"), ckpt.get("kind"), ckpt.get("L")
    if not isinstance(mc, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise ValueError(f"checkpoint {path!r}: model_config and state_dict must be dicts")
    if not all(torch.is_tensor(v) for v in ckpt["state_dict"].values()):
        raise ValueError(f"checkpoint {path!r}: state_dict must hold tensors only")
    if kind not in ("mdm", "ar"):
        raise ValueError(f"checkpoint {path!r}: kind must be 'mdm' or 'ar', got {kind!r}")
    if bool(mc.get("causal")) != (kind == "ar"):
        raise ValueError(f"checkpoint {path!r}: kind {kind!r} but model_config causal = {mc.get('causal')!r}")
    block = mc.get("block_size")
    if isinstance(L, bool) or not isinstance(L, int) or L < 1 or not isinstance(block, int) or L > block:
        raise ValueError(f"checkpoint {path!r}: L = {L!r} must be an integer in [1, block_size = {block!r}]")


def check_language(ckpt, lang) -> None:
    """Refuse a language that does not match the checkpoint's model: vocabulary size, and a
    length ``L`` the model was built for (a mismatch would score a different problem)."""
    mc = ckpt["model_config"]
    V = int(lang.vocab_size)
    if int(mc.get("vocab_size", -1)) != V:
        raise ValueError(f"checkpoint language has V = {V} tokens but the model was built for vocab_size = "
                         f"{mc.get('vocab_size')}; the checkpoint's language_params do not belong to its model")
    if int(ckpt["L"]) > int(mc.get("block_size", 0)):
        raise ValueError(f"checkpoint L = {ckpt['L']} exceeds the model's block_size = {mc.get('block_size')}")


def checkpoint_language(ckpt):
    """The language a checkpoint was trained on (stored parameters first, else its spec)."""
    from mdm_exact.languages import as_language
    from neural.data import language_from_dict

    if ckpt.get("language_params"):
        try:
            lang = language_from_dict(ckpt["language_params"])
        except (TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"checkpoint language_params are malformed: {exc}") from None
    elif ckpt.get("language"):
        lang = as_language(ckpt["language"])
    else:
        raise ValueError("checkpoint stores neither language parameters nor a language spec")
    if isinstance(ckpt.get("model_config"), dict) and "L" in ckpt:
        check_language(ckpt, lang)
    return lang


def warm_start(path, *, kind: str, lang, L: int) -> dict:
    """The ``init_from`` of :func:`neural.train.train` from the checkpoint at ``path``: its float32
    weights, its network configuration and where they came from (path, steps, training seconds,
    summed over what it itself was started from).

    Raises
    ------
    ValueError
        If the checkpoint cannot be loaded, is of the other kind, or was built for another
        vocabulary or length ``L``.
    FileNotFoundError
        If ``path`` does not exist.
    """
    net, ckpt = load_checkpoint(path)
    if ckpt["kind"] != kind:
        raise ValueError(f"cannot start a {kind} run from {os.fspath(path)!r}: it is an {ckpt['kind']} checkpoint")
    check_language(ckpt, lang)
    if int(ckpt["L"]) != int(L):
        raise ValueError(f"cannot start a run at L = {L} from {os.fspath(path)!r}: it was trained at L = {ckpt['L']}")
    summ = (ckpt.get("train") or {}).get("summary") or {}
    before = summ.get("init_from") or {}
    seconds = summ.get("seconds")
    source = {"checkpoint": os.fspath(path), "steps": int(ckpt["step"]),
              "seconds": None if seconds is None else float(seconds),
              "total_steps": int(ckpt["step"]) + int(before.get("total_steps") or 0),
              "total_seconds": None if seconds is None else float(seconds) + float(before.get("total_seconds") or 0.0)}
    return {"model": net.state_dict(),
            "model_config": net.config.to_dict(), "source": source}

