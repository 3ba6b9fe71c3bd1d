"""A run's life, for the train command and the stacked launcher alike: the job Hydra has set up checked and
turned into a new run, a resume or a requeued job's rerun (prepare_run), a new run that failed before its
first checkpoint left without a trace (forget_unstarted), and how it ended written to its status.json
(finish_run). Imports no torch or Lightning at import time, so the command's mistakes are reported at once."""

import math
import os
import shutil
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from lyricgen import Diverged, NotRequeued, UserError
from lyricgen.config import CONF_DIR, validate
from lyricgen.options import flatten
from lyricgen.rundir import RunDir, load_run_config

RESUMABLE_KEYS = ("trainer.", "checkpoint.", "threads", "sample_length", "memory.", "extras.")  # a resume may change


def prepare_run(cfg: DictConfig) -> tuple[DictConfig, Path, Path | None]:
    """(config, run dir, checkpoint to continue or None) of the job Hydra has set up: its config checked,
    and a new run, a resume or a rerun chosen; what the stacked launcher runs for each member of a stack. Its
    config is validated here unless the command line's check already validated this very config."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN and cfg.trainer.get("strategy") == "ddp" and not slurm_started_the_ranks():
        # Lightning's ddp re-runs sys.argv in its child processes, which would relaunch the whole sweep.
        print("note: trainer.strategy=ddp runs as ddp_spawn inside a -m sweep", file=sys.stderr)
        cfg.trainer.strategy = "ddp_spawn"
    cfg, out_dir, ckpt_path = chosen_run(cfg, hydra_cfg)
    if ckpt_path is not None:  # a checkpoint that cannot be read, or has no steps left, is said before the config
        from lyricgen.training.fit import start_step  # torch: the command line has passed its checks

        start_step(cfg, out_dir, ckpt_path)
    if ckpt_path is not None or not checked_by_the_command_line(hydra_cfg):
        validate(cfg)
    if cfg.extras.print_config:
        print(OmegaConf.to_yaml(cfg, resolve=True))
    return cfg, out_dir, ckpt_path


def checked_by_the_command_line(hydra_cfg: DictConfig) -> bool:
    """Whether the train command's check (lyricgen.hydra.cli) validated this very config before Hydra made a
    directory: a single run of lyricgen's own conf/. A sweep's jobs past the first, a continued run's config
    and configs of the user's own --config-dir it did not see."""
    main = [source.path for source in hydra_cfg.runtime.config_sources if source.provider == "main"]
    return hydra_cfg.mode == RunMode.RUN and main == [str(CONF_DIR)]


def chosen_run(cfg: DictConfig, hydra_cfg: DictConfig) -> tuple[DictConfig, Path, Path | None]:
    """(config, run dir, checkpoint to continue or None): a run to continue (resume=, ckpt_path=), this
    command's own earlier run in its directory (rerun), or a new run."""
    if cfg.resume or cfg.ckpt_path:
        return resumed_run(cfg, list(hydra_cfg.overrides.task))
    out_dir = Path(hydra_cfg.runtime.output_dir)
    if RunDir(out_dir).last.is_file():
        return rerun(cfg, out_dir)
    return cfg, out_dir, None


def resumed_run(cfg: DictConfig, overrides: list[str]) -> tuple[DictConfig, Path, Path]:
    """(config, run dir, checkpoint) to continue: the run's own config, with the command line's key=value
    overrides (e.g. trainer.max_steps=5000) on top."""
    ckpt_path = Path(cfg.ckpt_path) if cfg.ckpt_path else RunDir(Path(cfg.resume)).last
    run_dir = Path(cfg.resume) if cfg.resume else RunDir.of_checkpoint(ckpt_path).path
    if not ckpt_path.is_file():
        raise UserError(f"nothing to resume: {ckpt_path} does not exist (resume=<run dir> or ckpt_path=<.ckpt>)")
    changes = [item for item in overrides if item.split("=")[0].lstrip("+~") not in ("resume", "ckpt_path")]
    # The model, data and optimiser state come back from the checkpoint: changing their config would be
    # silently ignored (Adam's saved lr wins) or break the restore.
    refused = [item for item in changes if not item.lstrip("+~").startswith(RESUMABLE_KEYS)]
    if refused:
        raise UserError(f"a resumed run keeps its config: drop {refused} (only {', '.join(RESUMABLE_KEYS)} can change)")
    resumed = OmegaConf.merge(load_run_config(run_dir), OmegaConf.from_dotlist(changes))
    return resumed, run_dir, ckpt_path


def rerun(cfg: DictConfig, out_dir: Path) -> tuple[DictConfig, Path, Path]:
    """A command run again into the directory of its own earlier run — a SLURM job requeued after
    preemption or its time limit, the same hydra.run.dir — continues that run from its last checkpoint;
    another run's directory is refused (it would mix two runs' checkpoints and curves)."""
    saved = dict(flatten(OmegaConf.to_container(load_run_config(out_dir), resolve=True)))
    differ = [
        key
        for key, value in flatten(OmegaConf.to_container(cfg, resolve=True))
        if not key.startswith(RESUMABLE_KEYS) and saved.get(key) != value
    ]
    if differ:
        raise UserError(
            f"{out_dir} already holds another run ({', '.join(differ[:3])} differ): choose another "
            f"hydra.run.dir, or continue that run with resume={out_dir}"
        )
    from lyricgen.training.fit import resumable_step  # torch: the command line has passed its checks

    step = resumable_step(RunDir(out_dir).last)
    print(
        f"note: {out_dir} already holds this run: continuing it from its last checkpoint (step {step})", file=sys.stderr
    )
    return cfg, out_dir, RunDir(out_dir).last


def finish_run(out_dir: Path, result: float | Diverged | NotRequeued) -> float:
    """How a run ended, in its status.json; what the sweeper gets: its best validation loss, or inf for a
    diverged run of a sweep (the sweep goes on with its other runs, and lyricgen.hydra.sweeps reports this one
    at its end). A single run that diverged fails with the reason."""
    if not isinstance(result, UserError):
        RunDir(out_dir).record_ending("finished", f"best val/loss {result:.4f}")
        return result
    RunDir(out_dir).record_ending("diverged" if isinstance(result, Diverged) else "not requeued", str(result))
    if HydraConfig.get().mode != RunMode.MULTIRUN:
        raise result
    print(f"error: {result}", file=sys.stderr)
    return math.inf


def slurm_started_the_ranks() -> bool:
    """A SLURM job of several tasks (hydra.launcher.tasks_per_node > 1): SLURM started one process per
    rank, and Lightning's SLURM environment joins them; nothing needs spawning."""
    return int(os.environ.get("SLURM_NTASKS", "1")) > 1


def forget_unstarted(out_dir: Path) -> None:
    """A new run that stopped before its first checkpoint (a corpus that cannot be read, say) leaves no
    directory behind: `ckpt=latest`, `lyricgen.report` and `resume=` would meet an empty run. Only what
    the run itself wrote is removed, and the directory only once it is empty: hydra.run.dir may name a
    folder that holds other things."""
    run = RunDir(out_dir)
    written = [run.hydra, run.config, run.data, out_dir / f"{HydraConfig.get().job.name}.log"]
    if run.checkpoints.exists() or any(path not in written for path in out_dir.iterdir()):
        return
    for path in written:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    out_dir.rmdir()
