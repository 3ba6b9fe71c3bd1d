"""The layout as docs/architecture.md describes it: which layer may import which, what each command loads
before it has checked its command line, and the written table of imports against the code."""

import ast
import re
import subprocess
import sys

import pytest
from conftest import ROOT

PACKAGE = ROOT / "lyricgen"
MODULES = {
    str(path.relative_to(PACKAGE).with_suffix("")): path
    for path in PACKAGE.rglob("*.py")
    if "__pycache__" not in path.parts and "conf" not in path.relative_to(PACKAGE).parts
}
SHARED = {"charset", "config", "atomic", "rundir", "provenance", "options"}  # leaves every layer may use
LAYERS = {  # what each layer may import: nn asks quality which words rhyme, training scores samples with it
    "nn": {"nn", "quality"},
    "data": {"data"},
    "training": {"training", "nn", "data", "quality"},
    "quality": {"quality"},
    "hydra": {"hydra", "training"},  # the launcher trains stacked runs through training's run life
}
COMMANDS = {"train", "generate", "play", "score", "evaluate", "prepare", "report", "reproduce", "batches", "standin"}


def lyricgen_imports(path) -> set[str]:
    """The lyricgen modules a file imports anywhere in it, as paths without .py (`nn/charrnn`); the package
    itself (UserError and friends) left out."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lyricgen":
            base = node.module.removeprefix("lyricgen").lstrip(".").replace(".", "/")
            for alias in node.names:
                submodule = f"{base}/{alias.name}".lstrip("/")
                found.add(submodule if submodule in MODULES else base)
        elif isinstance(node, ast.Import):
            found |= {alias.name.removeprefix("lyricgen.").replace(".", "/") for alias in node.names}
    return {name for name in found if name in MODULES and not name.endswith("__init__")}


@pytest.mark.parametrize("module", sorted(name for name in MODULES if "/" in name))
def test_each_layer_imports_only_what_it_may(module):
    layer = module.split("/")[0]
    allowed = LAYERS[layer] | SHARED
    wrong = {name for name in lyricgen_imports(MODULES[module]) if name.split("/")[0] not in allowed}
    assert not wrong, f"{module} imports {sorted(wrong)}: {layer}/ may import {sorted(allowed)}"


def test_the_top_floor_holds_commands_and_shared_leaves_only():
    """A new top-level module is a command or a leaf every layer may use: anything else has a layer."""
    top = {name for name in MODULES if "/" not in name and name != "__init__"}
    assert top == COMMANDS | SHARED, f"loose top-level modules: {sorted(top - COMMANDS - SHARED)}"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_command_imports_a_command(command):
    imported = {name for name in lyricgen_imports(MODULES[command]) if "/" not in name}
    assert not imported & COMMANDS, f"{command} imports {sorted(imported & COMMANDS)}: move what it shares down a floor"


@pytest.mark.parametrize("leaf", sorted(SHARED))
def test_shared_leaves_import_only_shared_leaves(leaf):
    wrong = lyricgen_imports(MODULES[leaf]) - SHARED
    assert not wrong, f"{leaf} imports {sorted(wrong)}: a shared leaf imports no layer"


def written_table() -> dict[str, set[str]]:
    """{module: the lyricgen modules docs/architecture.md says it imports}."""
    table = {}
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        for module in re.findall(r"`([\w/]+)\.py`", cells[0]):
            table[module] = set(re.findall(r"`([\w/]+)`", cells[2]))
    return table


def test_the_written_table_lists_every_module_and_exactly_its_imports():
    table = written_table()
    assert sorted(table) == sorted(MODULES), "docs/architecture.md's table and lyricgen/ list other modules"
    differ = {
        module: {"written": sorted(table[module]), "imported": sorted(lyricgen_imports(path))}
        for module, path in MODULES.items()
        if table[module] != lyricgen_imports(path)
    }
    assert not differ, differ


HEAVY = ("torch", "lightning", "pandas", "hydra", "matplotlib")
NOT_IMPORTED = {  # where the time goes: lightning ~3 s on 2 cores, torch ~2 s, pandas and hydra ~0.5 s
    "lyricgen.config": HEAVY,  # checking a config loads nothing heavy
    "lyricgen.hydra.cli": ("torch", "lightning", "pandas", "matplotlib"),
    "lyricgen.options": HEAVY,  # every command's grammar: its mistakes are reported at once
    "lyricgen.train": ("torch", "lightning", "pandas", "matplotlib"),  # the command's mistakes are reported at once
    "lyricgen.evaluate": ("torch", "lightning", "pandas", "matplotlib"),  # likewise
    "lyricgen.prepare": ("torch", "lightning", "pandas", "matplotlib"),  # likewise
    "lyricgen.charset": ("lightning", "pandas", "hydra", "matplotlib"),
    "lyricgen.nn": ("lightning", "pandas", "hydra", "matplotlib"),  # the network apart from Lightning
    "lyricgen.generate": ("lightning", "pandas", "hydra", "matplotlib"),  # generation starts fast
    "lyricgen.data.lyrics_csv": ("torch", "lightning", "matplotlib"),
    "lyricgen.report": ("torch", "lightning"),  # reads run directories, not models
    "lyricgen.batches": HEAVY,  # the grammar's mistakes before the corpus and torch
    "lyricgen.standin": HEAVY,  # likewise
    "lyricgen.quality.scorecard": HEAVY,  # text in, numbers out
}


@pytest.mark.parametrize("module", NOT_IMPORTED)
def test_module_imports_nothing_it_does_not_need(module):
    code = f"import sys, {module}; print(' '.join(sorted({{name.split('.')[0] for name in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(result.stdout.split())
    assert module.split(".")[0] in loaded  # the probe itself works
    assert not loaded & set(NOT_IMPORTED[module]), f"{module} imports {sorted(loaded & set(NOT_IMPORTED[module]))}"
