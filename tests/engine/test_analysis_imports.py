"""The analyses are engine code: importing them must not pull in textual."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_analysis_save_and_export_do_not_import_textual():
    code = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import backprop_tui.engine.analysis as analysis
        for module in pkgutil.iter_modules(analysis.__path__):
            importlib.import_module(f"backprop_tui.engine.analysis.{module.name}")
        import backprop_tui.engine.save, backprop_tui.engine.export
        leaked = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
        assert not leaked, leaked
        print(len([m for m in sys.modules if m.startswith("backprop_tui.engine.analysis.")]))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 12  # every analysis module was imported
