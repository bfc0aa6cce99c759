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
