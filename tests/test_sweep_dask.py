"""Sweeps on a real Dask distributed cluster (a LocalCluster of 2 worker processes)."""

import pytest

distributed = pytest.importorskip("distributed")  # dask[distributed] is in the test extra

from mdm_exact.runtime.cli import main  # noqa: E402
from mdm_exact.runtime.store import ResultStore  # noqa: E402
from mdm_exact.runtime.sweep import run_cells, summarize  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def _log(path):
    return sorted(int(line.split()[0]) for line in path.read_text().splitlines()) if path.exists() else []


def test_sweep_on_a_dask_cluster_stores_every_cell_once(tmp_path, cluster):
    log = tmp_path / "log"
    store = ResultStore(tmp_path / "s.sqlite")
    cells = [{"kind": "square", "x": i, "sleep": 0.1, "log": str(log)} for i in range(8)]
    cells.append({"kind": "square", "x": 99, "fail": True})
    recs = run_cells(cells, store, executor="dask", scheduler=cluster.scheduler_address, progress=False)
    assert [r["status"] for r in recs] == ["ok"] * 8 + ["error"]
    assert "RuntimeError: cell x=99 asked to fail" in recs[-1]["error"]
    assert [r["result"]["y"] for r in recs[:8]] == [i * i for i in range(8)]
    assert _log(log) == list(range(8))
    pids = {line.split()[1] for line in log.read_text().splitlines()}
    import os

    with distributed.Client(cluster) as client:
        workers = set(client.run(os.getpid).values())
    assert len(workers) == 2
    assert pids <= {str(p) for p in workers}  # computed in the cluster's worker processes
    assert {r["config"]["x"] for r in store.rows(status="ok")} == set(range(8))

    again = run_cells(cells, store, executor="dask", scheduler=cluster.scheduler_address, progress=False)
    assert summarize(again)["cached"] == 8 and _log(log) == list(range(8))


def test_cli_sweep_with_dask_scheduler(tmp_path, cluster, capsys):
    log = tmp_path / "log"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[[cells]]\nkind = 'square'\nx = [1, 2, 3, 4]\nlog = '{log}'\n")
    store = tmp_path / "c.sqlite"
    args = ["sweep", str(cfg), "--executor", "dask", "--scheduler", cluster.scheduler_address, "--json", "--quiet"]
    assert main(args) == 0
    import json

    summary = json.loads(capsys.readouterr().out)
    assert summary["computed"] == 4 and summary["ok"] == 4 and summary["store"] == str(store)
    assert main(args + ["--force"]) == 0
    assert json.loads(capsys.readouterr().out)["computed"] == 4
    assert _log(log) == [1, 1, 2, 2, 3, 3, 4, 4]
    assert [r["attempts"] for r in ResultStore(store).rows()] == [2, 2, 2, 2]
