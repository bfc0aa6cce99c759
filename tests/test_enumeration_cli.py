"""Tests of ``mdm-theory exact`` (``mdm_exact.runtime.commands.exact``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mdm_exact.sampler import exact as E
from mdm_exact.runtime.cli import main
from mdm_exact.sampler.models import PerturbedModel
from mdm_exact.testing.languages import sparse_bigram
from mdm_exact.sampler.schedules import schedule


def test_cli_json(capsys, tmp_path):
    from mdm_exact.languages.io import save_language

    path = save_language(sparse_bigram(), tmp_path / "lang.json")
    rc = main(["exact", "--language", str(path), "--length", "4", "--steps", "2", "--eta", "0.3",
               "--model-seed", "2", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("ser", "gen_ppl", "kl_data_model", "kl_model_data", "log_ter_gap", "instance_kl_total",
                "entropy_model", "L", "num_steps", "eta", "model_seed", "language", "epsilon_learning"):
        assert key in out
    direct = E.exact_metrics(sparse_bigram(), 4, schedule("linear", 2), model=PerturbedModel(sparse_bigram(), 0.3, rng=2))
    assert out["ser"] == pytest.approx(direct["ser"], rel=1e-15)
    assert out["kl_model_data"] is None or out["kl_model_data"] >= 0
    rc = main(["exact", "--language", str(path), "--length", "4", "--step-sizes", "2,1,1"])
    assert rc == 0
    assert "SER" in capsys.readouterr().out


def test_cli_refuses_large_sizes(capsys, tmp_path):
    from mdm_exact.languages.io import save_language

    path = save_language(sparse_bigram(), tmp_path / "lang.json")
    rc = main(["exact", "--language", str(path), "--length", "20", "--steps", "2", "--json"])
    assert rc == 2
    assert "MAX_STATES" in capsys.readouterr().err
