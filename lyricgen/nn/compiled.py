"""The compiled recurrence (recurrence.cpp): kernels.py's per-character loops in C++, the same ATen calls in
the same order, so the same bits without the interpreter's cost per call. `make install` builds it
(`build()`, through torch.utils.cpp_extension) where a C++ compiler exists, into the environment (one build
per torch version and source); without it lyricgen runs kernels.py's own loops and says so once.
LYRICGEN_COMPILED=0 chooses the Python loops (what the tests and benchmarks compare against)."""

import hashlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import torch

SOURCE = Path(__file__).with_name("recurrence.cpp")
SWITCH = "LYRICGEN_COMPILED"
BUILD_DIR = "LYRICGEN_BUILD_DIR"
NOT_BUILT = (
    "lyricgen: the compiled recurrence is not built here (make install builds it where a C++ compiler exists): "
    "training runs the pure-PyTorch loops, the same arithmetic, slower"
)
loaded: dict[str, ModuleType | None] = {}  # the built module once looked for, under "module"


def module_name() -> str:
    """Named after the source's hash: an edited source is another module, built again by `make install`."""
    return f"lyricgen_recurrence_{hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]}"


def build_dir() -> Path:
    """Where the build goes: the environment's, one per torch version (LYRICGEN_BUILD_DIR: elsewhere)."""
    return Path(os.environ.get(BUILD_DIR) or Path(sys.prefix) / "lyricgen-build") / f"torch-{torch.__version__}"


def built_path() -> Path:
    return build_dir() / f"{module_name()}.so"


def recurrence() -> ModuleType | None:
    """The compiled loops, or None: not built here, or LYRICGEN_COMPILED=0."""
    if os.environ.get(SWITCH) == "0":
        return None
    if "module" not in loaded:
        loaded["module"] = load_built()
    return loaded["module"]


def load_built() -> ModuleType | None:
    path = built_path()
    if not path.is_file():
        print(NOT_BUILT, file=sys.stderr)
        return None
    spec = importlib.util.spec_from_file_location(module_name(), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build() -> bool:
    """Compile recurrence.cpp into the environment; one line and False where it cannot (no compiler)."""
    compiler = os.environ.get("CXX", "c++")  # what torch.utils.cpp_extension compiles with
    if shutil.which(compiler) is None:
        return not_built(
            f"no C++ compiler {compiler!r} here; with one (Debian: apt install g++), run make install again"
        )
    from torch.utils import cpp_extension

    build_dir().mkdir(parents=True, exist_ok=True)
    try:
        cpp_extension.load(
            name=module_name(), sources=[str(SOURCE)], build_directory=str(build_dir()), extra_cflags=["-O3"]
        )
    except (OSError, RuntimeError, ImportError) as err:
        return not_built(str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__)
    return True


def not_built(reason: str) -> bool:
    print(f"lyricgen: the compiled recurrence was not built ({reason}): lyricgen runs without it", file=sys.stderr)
    return False
