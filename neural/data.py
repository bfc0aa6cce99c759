"""Training data: exact ancestral samples of a :mod:`mdm_exact` language, streamed; entropy rates.

Every batch is a fresh draw ``lang.sample(batch, L, rng=...)`` from one NumPy generator seeded by
the training seed, so the model never sees the validation set (drawn from an independent stream)
and the optimum is the language itself.
"""

from __future__ import annotations

import numpy as np
import torch


def language_to_dict(lang) -> dict | None:
    """Parameters of an n-gram or HMM language as tensors and primitives (checkpoint-safe), else None."""
    from mdm_exact.languages import HMM, NGram

    if isinstance(lang, NGram):
        return {"kind": "ngram", "order": int(lang.order), "initial": torch.from_numpy(np.array(lang.initial)),
                "conditional": torch.from_numpy(np.array(lang.conditional))}
    if isinstance(lang, HMM):
        return {"kind": "hmm", "initial": torch.from_numpy(np.array(lang.initial)),
                "transition": torch.from_numpy(np.array(lang.transition)),
                "emission": torch.from_numpy(np.array(lang.emission))}
    return None


def language_from_dict(d: dict):
    """Inverse of :func:`language_to_dict`."""
    from mdm_exact.languages import HMM, NGram

    if d["kind"] == "ngram":
        return NGram(int(d["order"]), d["initial"].numpy(), d["conditional"].numpy())
    if d["kind"] == "hmm":
        return HMM(d["initial"].numpy(), d["transition"].numpy(), d["emission"].numpy())
    raise ValueError(f"unknown stored language kind {d['kind']!r}")


def entropy_rate(lang, L: int, *, rng=None, num_samples: int = 4096) -> dict:
    """Per-token entropy ``H(q_L) / L`` in nats.

    Exact (``lang.entropy(L) / L``) where the language supports it; otherwise the Monte Carlo
    estimate ``mean(-log q(x)) / L`` over ``num_samples`` exact samples, with its standard error.
    Returns ``{"value", "method", "stderr"}``.
    """
    try:
        return {"value": float(lang.entropy(L)) / L, "method": "exact", "stderr": 0.0}
    except NotImplementedError:
        pass
    rng = np.random.default_rng(rng)
    vals = []
    for start in range(0, num_samples, 1024):
        x = lang.sample(min(1024, num_samples - start), L, rng=rng)
        vals.append(-lang.log_prob(x) / L)
    v = np.concatenate(vals)
    return {"value": float(v.mean()), "method": "monte-carlo", "stderr": float(v.std(ddof=1) / np.sqrt(v.size))}


class DataStream:
    """Endless batches ``(batch_size, L)`` of exact samples, as int64 tensors on ``device``.

    ``prefetch > 0`` draws batches in a background thread (one producer, one generator, so the
    sequence of batches is the same as without it) to keep a GPU busy; call :meth:`close` after use.
    """

    def __init__(self, lang, L: int, batch_size: int, *, rng=None, device="cpu", prefetch: int = 0):
        self.lang, self.L, self.batch_size = lang, int(L), int(batch_size)
        self.rng = np.random.default_rng(rng)
        self.device = torch.device(device)
        self._queue = None
        if prefetch:
            import queue
            import threading

            self._queue = queue.Queue(maxsize=int(prefetch))
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._produce, daemon=True)
            self._thread.start()

    def _draw(self):
        return self.lang.sample(self.batch_size, self.L, rng=self.rng)  # (batch, L)

    def _produce(self):
        import queue

        while not self._stop.is_set():
            try:
                x = self._draw()
            except BaseException as exc:  # hand the error to the consumer
                x = exc
            while not self._stop.is_set():
                try:
                    self._queue.put(x, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(x, BaseException):
                return

    def __iter__(self):
        return self

    def __next__(self):
        x = self._draw() if self._queue is None else self._queue.get()
        if isinstance(x, BaseException):
            raise x
        return torch.from_numpy(x).to(self.device, non_blocking=True)

    def close(self):
        if self._queue is not None:
            self._stop.set()
            self._thread.join(timeout=5)


def validation_set(lang, n: int, L: int, *, rng=None) -> np.ndarray:
    """A fixed validation set of ``n`` exact samples (n, L) from its own seed."""
    return lang.sample(int(n), int(L), rng=np.random.default_rng(rng))
