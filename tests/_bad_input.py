"""Shared check of the tests/test_bad_input_*.py files: a bad input is exit 2, one line, no
traceback, the problem named, refused quickly, nothing changed on disk."""

from __future__ import annotations

import hashlib
import os
import time

from mdm_exact.runtime.cli import main


def snapshot(folder) -> dict:
    """``{relative path: sha256}`` of every file under ``folder`` (directories as None)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), folder)] = None
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, folder)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def refused(capsys, args, *needles, folder=None, max_seconds=1.0) -> str:
    """Run ``mdm-theory ARGS`` in-process and check that it is a clean refusal; returns the message.

    The command runs twice; the second run (imports done) must refuse within ``max_seconds``.
    """
    capsys.readouterr()
    before = snapshot(folder) if folder is not None else None
    main([str(a) for a in args])  # the first call pays the imports; the refusal itself is timed below
    capsys.readouterr()
    t0 = time.perf_counter()
    code = main([str(a) for a in args])
    seconds = time.perf_counter() - t0
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, (args, code, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("mdm-theory "), err
    for n in needles:
        assert n in err, (n, err)
    assert seconds < max_seconds, f"refused after {seconds:.2f} s: {args}"
    if folder is not None:
        assert snapshot(folder) == before, "a refused command changed files on disk"
    return err
