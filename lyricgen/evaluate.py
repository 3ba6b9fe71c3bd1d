"""Score a checkpoint on text: `python -m lyricgen.evaluate ckpt=outputs/runs/<time> split=test`.

Loss and bits per character of a checkpoint on the validation or test split of the corpus its run trained
on, of another corpus (data=... on the command line), or of any text file (text=...). Prints one line and
writes the numbers as JSON. The command line is checked before torch is imported (lyricgen.training.scoring does
the work).
"""

import json
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from lyricgen import one_line_errors
from lyricgen.atomic import write_atomically
from lyricgen.config import CONF_DIR
from lyricgen.hydra.cli import run_checked
from lyricgen.quality.scorecard import summary
from lyricgen.rundir import RunDir


def output_path(cfg: DictConfig, result: dict) -> Path:
    if cfg.out:
        return Path(cfg.out)
    name = f"text-{Path(cfg.text).stem}" if cfg.text else cfg.split
    return RunDir.of_checkpoint(result["checkpoint"]).evaluation(name)


@hydra.main(version_base=None, config_path=str(CONF_DIR), config_name="evaluate")
@one_line_errors
def run(cfg: DictConfig) -> None:
    """The Hydra task: score, write the JSON, print one line."""
    from lyricgen.training.scoring import evaluate

    result = evaluate(cfg, list(HydraConfig.get().overrides.task))
    out = output_path(cfg, result)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out, lambda partial: partial.write_text(json.dumps(result, indent=2) + "\n"))
    per_label = "".join(f", {name} {entry['bpc']:.4f}" for name, entry in result.get("per_label", {}).items())
    memory = (
        f"; with the run's n-gram memory {result['loss_with_memory']:.4f} nats/char, "
        f"{result['bpc_with_memory']:.4f} bits/char"
        if "loss_with_memory" in result
        else ""
    )
    print(
        f"{result['scored']}: {result['loss']:.4f} nats/char, {result['bpc']:.4f} bits/char{per_label}{memory} "
        f"over {result['characters']:,} characters ({result['checkpoint']}); written to {out}"
    )
    if "scorecard" in result:
        card = result["scorecard"]
        print(f"samples: {summary(card['samples'])}\nscored text: {summary(card['scored_text'])}")


def main() -> None:
    """`python -m lyricgen.evaluate` and `lyricgen-evaluate`: the command line checked, then the scoring."""
    run_checked("evaluate", run)


if __name__ == "__main__":
    main()
