"""``mdm_exact`` never imports torch or matplotlib (STYLE.md §1)."""

import subprocess
import sys
import textwrap


def test_mdm_exact_imports_without_torch_or_matplotlib():
    code = textwrap.dedent(
        """
        import importlib, pkgutil, sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "matplotlib"):
                    raise ImportError(f"blocked import of {name}")
                return None

        sys.meta_path.insert(0, Block())
        import mdm_exact
        for mod in pkgutil.walk_packages(mdm_exact.__path__, "mdm_exact."):
            importlib.import_module(mod.name)
        bad = [m for m in sys.modules if m.split(".")[0] in ("torch", "matplotlib")]
        assert not bad, bad
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def _run(code, timeout=120):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout)


def test_neural_without_torch_says_how_to_install_it():
    """``sys.modules['torch'] = None`` makes ``import torch`` fail as if torch were not installed."""
    out = _run(
        """
        import sys
        sys.modules["torch"] = None
        from mdm_exact.runtime.cli import main
        sys.exit(main(["neural", "evaluate", "--checkpoint", "model.pt"]))
        """
    )
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "needs PyTorch" in lines[0]
    assert "pip install torch==2.13.0" in lines[0] and "pip install -e '.[neural]'" in lines[0]


def test_a_neural_sweep_cell_without_torch_is_a_cell_error_naming_the_install(tmp_path):
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"not read without torch")
    out = _run(
        f"""
        import sys
        sys.modules["torch"] = None
        from mdm_exact.runtime.sweep import run_cells
        rec = run_cells([{{"kind": "neural", "checkpoint": {str(ckpt)!r}, "steps": [2]}}], {str(tmp_path / 's.sqlite')!r},
                        executor="serial", progress=False)[0]
        print(rec["status"], "pip install torch==2.13.0" in rec["error"])
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["error", "True"]


def test_cli_imports_only_the_command_being_run():
    out = _run(
        """
        import sys
        from mdm_exact.runtime.cli import build_parser
        build_parser("exact").parse_args(["exact", "--language", "paper-2gram", "-L", "4", "-N", "2"])
        from mdm_exact.runtime.cli import COMMANDS
        ours = sorted(name for name, (mod, _) in COMMANDS.items() if mod in sys.modules)
        upper = sorted(m for m in sys.modules if m.split(".")[0] in ("neural", "reports", "torch", "matplotlib"))
        print(ours, upper)
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['exact'] []"


def test_report_and_neural_commands_come_from_their_plugins_without_heavy_imports():
    out = _run(
        """
        import sys
        from mdm_exact.runtime.cli import build_parser
        build_parser()  # every command, as for --help
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("neural", "reports", "torch", "matplotlib")))
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['neural', 'neural.plugin', 'reports', 'reports.plugin']"
