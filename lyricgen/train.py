"""The command: `python -m lyricgen.train model=gru optim.lr=0.001`. Its command line is checked first
(lyricgen.hydra.cli); then a new run starts, or one continues (resume=, ckpt_path=, or a requeued job's own
directory: lyricgen.training.run), and lyricgen.training.fit trains it. No Lightning, torch or data code is
imported before the config has passed its checks, so a mistake on the command line is reported in a
fraction of a second rather than after seconds of imports."""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from lyricgen import Diverged, Interrupted, NotRequeued, UserError, one_line_errors
from lyricgen.config import CONF_DIR
from lyricgen.hydra.cli import run_checked
from lyricgen.training.run import finish_run, forget_unstarted, prepare_run


@hydra.main(version_base=None, config_path=str(CONF_DIR), config_name="config")
@one_line_errors
def run(cfg: DictConfig) -> float:
    """The Hydra task: one run (or one job of a sweep); what a sweeper minimises: its best validation loss."""
    out_dir, ckpt_path = Path(HydraConfig.get().runtime.output_dir), None
    try:
        cfg, out_dir, ckpt_path = prepare_run(cfg)
        from lyricgen.training.fit import fit_run  # Lightning, torch and the data code: only once the command is sound

        result = fit_run(cfg, out_dir, ckpt_path)
    except (Diverged, NotRequeued) as err:
        result = err
    except UserError as err:
        if ckpt_path is None and not isinstance(err, Interrupted) and not (cfg.resume or cfg.ckpt_path):
            forget_unstarted(out_dir)
        raise
    return finish_run(out_dir, result)


def main() -> None:
    """`python -m lyricgen.train` and `lyricgen-train`: the command line checked, then the run."""
    run_checked("train", run)


if __name__ == "__main__":
    main()
