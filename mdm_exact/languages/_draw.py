"""The one inverse-CDF draw of the package, NumPy form (twin of ``_kernels._inverse_cdf``).

Every categorical draw in ``mdm_exact`` (ancestral sampling of the languages, the instances
of the step rules, the tokens of the Monte Carlo sampler) is "the first index whose
cumulative weight exceeds a threshold", with pre-drawn uniforms (STYLE.md §4):

* ``inverse_cdf(w, u)`` for a probability vector ``w`` draws with threshold ``u``;
* ``inverse_cdf(w, u * total)`` draws from unnormalised weights (``total`` the last
  cumulative sum, the Monte Carlo sampler's convention).

The cumulative sums are sequential (``np.cumsum``), the same additions in the same order as
the kernel's running sum, so the two forms return the same index bitwise. When the
threshold is not below the rounded total (``u`` within rounding of 1), the last index with
positive weight is returned, never an index of weight zero.
"""

from __future__ import annotations

import numpy as np

__all__ = ["inverse_cdf"]


def inverse_cdf(w, thr) -> np.ndarray:
    """First index ``k`` with ``cumsum(w)[k] > thr``, else the last index with ``w > 0``.

    Parameters
    ----------
    w : ndarray, shape (V,) or (n, V)
        Non-negative weights: one vector shared by every threshold, or one row per threshold.
    thr : ndarray, shape (...) for 1-d ``w``, (n,) for 2-d ``w``
        Thresholds, e.g. uniforms in ``[0, 1)`` (times the total for unnormalised weights).

    Returns
    -------
    ndarray of int64, the shape of ``thr``
    """
    w = np.asarray(w, dtype=np.float64)
    thr = np.asarray(thr, dtype=np.float64)
    V = w.shape[-1]
    cdf = np.cumsum(w, axis=-1)  # (V,) or (n, V)
    if w.ndim == 1:
        k = np.searchsorted(cdf, thr, side="right").astype(np.int64)  # thr.shape; = #{cdf <= thr}
        last = V - 1 - int(np.argmax(w[::-1] > 0))
        return np.where(k >= V, last, k)
    k = (cdf <= thr[:, None]).sum(axis=1).astype(np.int64)  # (n,)
    over = k >= V
    if np.any(over):  # thr not below the rounded total: the last index with positive weight
        last = V - 1 - np.argmax((w > 0)[:, ::-1], axis=1)  # (n,)
        k = np.where(over, last, k)
    return k
