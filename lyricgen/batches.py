"""The exact batch of any step of a run, as text: `python -m lyricgen.batches run=<run dir> steps=[9972,11075]`.

A run's batch at step s depends only on its corpus, seed and s (lyricgen.data.RandomWindows), so the
windows behind a loss spike can be read back long after the run, without having recorded them.
"""

import sys
from dataclasses import dataclass, field

from lyricgen import UserError, one_line_errors
from lyricgen.options import help_text, parsed, required, wants_help

SUMMARY = "the text of a run's batches at the steps asked for (counted from 0, as in TensorBoard)"


@dataclass
class BatchesConfig:
    run: str = required("a run directory (it holds config.yaml)")
    steps: list[int] = field(
        default_factory=list, metadata={"help": "steps, counted from 0 as in TensorBoard: steps=[9972,11075]"}
    )


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print(help_text(BatchesConfig, "batches", SUMMARY))
        return
    cfg = parsed(BatchesConfig, argv, raw=("run",))
    if not cfg.steps:
        raise UserError("steps= names no step: give the steps to show, e.g. steps=[9972,11075]")
    from lyricgen.data.windows import windows_at  # the corpus and torch: once the command line is sound

    for step, windows in windows_at(cfg.run, cfg.steps).items():
        for index, text in enumerate(windows):
            print(f"=== step {step}, window {index} ===\n{text}")


if __name__ == "__main__":
    main()
