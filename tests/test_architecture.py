"""The import column of docs/architecture.md: what each module must NOT pull in, in a fresh interpreter
(where the time goes: importing lightning costs ~3 s on 2 cores, torch ~2 s, pandas and hydra ~0.5 s)."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "lightning", "pandas", "hydra", "matplotlib")
NOT_IMPORTED = {
    "lyricgen.config": HEAVY,  # checking a config loads nothing heavy
    "lyricgen.train": ("torch", "lightning", "pandas", "matplotlib"),  # the command's mistakes are reported at once
    "lyricgen.evaluate": ("torch", "lightning", "pandas", "matplotlib"),  # likewise
    "lyricgen.cli": ("torch", "lightning", "pandas", "matplotlib"),
    "lyricgen.charset": ("lightning", "pandas", "hydra", "matplotlib"),
    "lyricgen.model": ("lightning", "pandas", "hydra", "matplotlib"),  # the network apart from Lightning
    "lyricgen.generate": ("lightning", "pandas", "hydra", "matplotlib"),  # generation starts fast
    "lyricgen.ngram": ("lightning", "pandas", "hydra", "matplotlib"),  # counting needs torch alone
    "lyricgen.prepare": ("torch", "lightning", "pandas", "matplotlib"),  # its mistakes too, at once
    "lyricgen.lyrics_csv": ("torch", "lightning", "matplotlib"),
    "lyricgen.report": ("torch", "lightning"),  # reads run directories, not models
}


@pytest.mark.parametrize("module", NOT_IMPORTED)
def test_module_imports_nothing_it_does_not_need(module):
    code = f"import sys, {module}; print(' '.join(sorted({{name.split('.')[0] for name in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(result.stdout.split())
    assert module.split(".")[0] in loaded  # the probe itself works
    assert not loaded & set(NOT_IMPORTED[module]), f"{module} imports {sorted(loaded & set(NOT_IMPORTED[module]))}"
