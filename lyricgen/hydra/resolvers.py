"""The resolvers conf/'s YAML files use (`${scaled:20000}`, `${dirname:...}`, ...), registered with OmegaConf
when lyricgen.hydra is imported: before anything composes or resolves a config."""

import hashlib
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from lyricgen.rundir import HYDRA_SUBDIR, RunDir


def scaled(iterations: int, *, _root_: DictConfig) -> int:
    """${scaled:N} in a config: N iterations times the run's `scale` (make reproduce SCALE=0.1)."""
    return max(1, round(iterations * _root_.scale))


def resume_dir(resume: str | None, ckpt_path: str | None, fresh: str) -> str:
    """${resume_dir:...} for hydra.run.dir: a resumed run continues in its own directory."""
    if resume:
        return resume
    return str(RunDir.of_checkpoint(ckpt_path).path) if ckpt_path else fresh


def hydra_subdir(resume: str | None, ckpt_path: str | None) -> str | None:
    """${hydra_subdir:...} for hydra.output_subdir: a resumed run keeps the .hydra/ record of the command
    that made it (the report reads its experiment there); the resume command writes none."""
    return None if resume or ckpt_path else HYDRA_SUBDIR


def sqlite_in(directory: str, name: str) -> str:
    """${sqlite_in:DIR,FILE}: an SQLite URL for DIR/FILE, DIR created first (Optuna opens it before any job
    has made the sweep directory)."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(directory).resolve() / name}"


def dirname(name: str, limit: int = 200) -> str:
    """${dirname:...}: a run directory name within file-system limits (255 bytes); a longer one keeps its
    start and ends in a hash of the whole, so names stay unique."""
    if len(name.encode()) <= limit:
        return name
    digest = hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
    return f"{name.encode()[: limit - 13].decode(errors='ignore')}...{digest}"


for _resolver in (scaled, dirname, sqlite_in, resume_dir, hydra_subdir):
    OmegaConf.register_new_resolver(_resolver.__name__, _resolver, replace=True)
