"""An installed lyricgen (a wheel, not the checkout) runs from any directory: its configs ship inside it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, TOY_LYRICS, curve

from lyricgen.nn import compiled

SCRIPTS = ["lyricgen-train", "lyricgen-generate", "lyricgen-prepare", "lyricgen-report", "lyricgen-reproduce"]
SCRIPTS += ["lyricgen-batches", "lyricgen-evaluate"]


@pytest.mark.slow
def test_a_built_wheel_trains_and_generates_from_another_directory(tmp_path):
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    build = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(wheels),
        str(ROOT),
    ]
    subprocess.run(build, check=True, capture_output=True)
    (wheel,) = wheels.glob("lyricgen-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)  # fmt: skip
    assert all((target / "bin" / script).is_file() for script in SCRIPTS)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "toy.txt").write_text(TOY_LYRICS)
    env = {**os.environ, "PYTHONPATH": str(target)}  # the installed copy, ahead of the checkout's editable one

    def run(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)

    where = run(sys.executable, "-c", "import lyricgen.config as c; print(c.__file__, c.CONF_DIR)")
    assert where.stdout.split() == [str(target / "lyricgen" / "config.py"), str(target / "lyricgen" / "conf")]
    args = ["data=text", "data.path=toy.txt", "model=rnn", "model.hidden_size=8", "data.seq_len=16"]
    trained = run(str(target / "bin" / "lyricgen-train"), *args, "trainer.max_steps=3", "trainer.val_check_interval=3")
    assert trained.returncode == 0, trained.stderr
    assert "val loss" in trained.stdout and list((elsewhere / "outputs" / "runs").iterdir())
    sampled = run(str(target / "bin" / "lyricgen-generate"), "ckpt=latest", "length=20")
    assert sampled.returncode == 0, sampled.stderr
    assert len(sampled.stdout.strip()) >= 20
    scored = run(str(target / "bin" / "lyricgen-evaluate"), "ckpt=latest", "text=toy.txt")
    assert scored.returncode == 0 and "bits/char" in scored.stdout, scored.stderr
    assert len(list((target / "lyricgen" / "data" / "songbooks").glob("*.txt.gz"))) == 6  # data=songbooks ships too
    assert Path(ROOT / "conf").is_dir()  # the source of the shipped configs stays at the top of the checkout


def test_make_install_with_another_torch_build_installs_it_even_after_an_install(tmp_path):
    """The install stamp follows TORCH: `make install TORCH=<a CUDA build>` after `make train` reinstalls torch
    (shown with make -n, which prints the commands without running them)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    cuda = "torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"

    def planned(torch: str) -> str:
        command = ["make", "-n", "install", f"VENV={venv}", f"TORCH={torch}"]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout

    assert f"--force-reinstall --no-deps {cuda}" in planned(cuda)
    stamp = planned("torch==2.13.0").split("touch ")[1].split()[0]  # as if the CPU build were installed
    Path(stamp).touch()
    (venv / ".installed").touch()
    assert "pip install" not in planned("torch==2.13.0")  # nothing to do for the build that is there
    assert "pip install" in planned(cuda)  # another build: installed again


@pytest.mark.slow
def test_without_a_compiler_the_build_says_so_in_a_line_and_training_runs_the_python_loops(tmp_path, toy_corpus):
    """`make install`'s build step where no C++ compiler exists (hidden: CXX names none), into an empty build
    directory: one line, no failure; training then says once that it runs the Python loops, and trains as
    the compiled loops train (the same bits: the same loss at every step)."""
    hidden = {**os.environ, "LYRICGEN_BUILD_DIR": str(tmp_path / "build"), "CXX": str(tmp_path / "no-compiler")}
    build = [sys.executable, "-c", "from lyricgen.nn import compiled; compiled.build()"]
    built = subprocess.run(build, env=hidden, capture_output=True, text=True, cwd=ROOT)
    assert built.returncode == 0 and built.stderr.count("\n") == 1, built.stderr
    assert "the compiled recurrence was not built (no C++ compiler" in built.stderr
    run = ["-m", "lyricgen.train", "model=rnn", "model.hidden_size=16", "data=text", f"data.path={toy_corpus}"]
    run += ["trainer.max_steps=5", "trainer.val_check_interval=5", "data.val_chars=2000", "sample_length=10"]
    without = subprocess.run(
        [sys.executable, *run, f"hydra.run.dir={tmp_path / 'python'}"],
        env=hidden,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert without.returncode == 0, without.stderr[-3000:]
    assert without.stderr.count("the compiled recurrence is not built here") == 1
    if not (compiled.built_path()).is_file():
        pytest.skip("the compiled recurrence is not built here either: nothing to compare with")
    with_it = subprocess.run(
        [sys.executable, *run, f"hydra.run.dir={tmp_path / 'compiled'}"], capture_output=True, text=True, cwd=ROOT
    )
    assert with_it.returncode == 0 and "not built" not in with_it.stderr, with_it.stderr[-3000:]
    assert curve(tmp_path / "python") == curve(tmp_path / "compiled") and len(curve(tmp_path / "python")) == 5
