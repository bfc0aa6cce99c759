"""Theorem-versus-empirics figures and ``REPORT.md`` for mdm-theory (issue 6).

``mdm-theory report`` (the entry point ``mdm_theory.commands: report``, from
:mod:`reports.plugin`) regenerates everything under ``./reports/`` (or ``--out``) from
nothing: the data behind each figure (``data/<figure>.json``), the figures
(``figures/<figure>.png``) and ``REPORT.md``. Finished computations are kept in a cell store
under ``data/`` (the runtime's store, :mod:`reports.cells`) so an interrupted run resumes
without recomputing.

This package may import matplotlib; :mod:`mdm_exact` never does.
"""

__all__ = ["build"]
