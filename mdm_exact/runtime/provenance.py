"""Provenance recorded beside every result: package version, git commit, library versions, machine."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version


def git_commit(path: str | None = None) -> str | None:
    """The git commit of the source tree at ``path`` (default: this package), or None."""
    here = path or os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(
            ["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and sha else None


def library_versions(names=("numpy", "scipy", "numba", "sympy", "matplotlib", "torch")) -> dict:
    """Installed versions of the given distributions (None when absent); never imports them."""
    res = {}
    for n in names:
        try:
            res[n] = version(n)
        except PackageNotFoundError:
            res[n] = None
    return res


def machine() -> dict:
    """A short description of this machine."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }


def provenance() -> dict:
    """Everything above in one JSON-ready dict."""
    from mdm_exact import __version__

    return {"package_version": __version__, "git_commit": git_commit(), "versions": library_versions(), "machine": machine()}
