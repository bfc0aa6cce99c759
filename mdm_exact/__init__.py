"""mdm_exact: exact and Monte Carlo analysis of idealised masked diffusion samplers.

Implements, as reconstructed in ``shared/theory/STATEMENTS.md``, the setting of Feng et al.
(2025), "Theoretical Benefit and Limitation of Diffusion Language Model", arXiv:2502.09622.
Pure NumPy/SciPy/Numba/SymPy: this package never imports torch or matplotlib.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mdm-theory")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"

from mdm_exact.languages import HMM, Language, NGram  # noqa: E402

__all__ = ["HMM", "Language", "NGram", "__version__"]
