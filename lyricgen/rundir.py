"""The layout of a run directory, known in one place: where a run writes its checkpoints, its resolved
config, its spike forensics and evaluations, and how a checkpoint leads back to its run.

    outputs/runs/<time>/
      checkpoints/best.ckpt, last.ckpt   the best by val/loss, and the latest
      config.yaml                        the resolved config: what resume= continues with
      .hydra/                            Hydra's record of the command (hydra.yaml, overrides.yaml)
      spikes.jsonl                       every loss or gradient spike with the text of its batch
      data.json                          what it trained and validated on: sizes and the validation
                                         text's fingerprint (equal fingerprints, equal validation text)
      status.json                        how it ended: finished, diverged, not requeued (and its
                                         process's exit code and time, under lyricgen.reproduce)
      samples.json                       the samples of its latest validation, scored on the lyrics
                                         scorecard (lyricgen.quality): what the report's rows show
      evaluation-<split or file>.json    lyricgen.evaluate's numbers
      events.out.tfevents.*, hparams.yaml  TensorBoard's
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

from lyricgen.atomic import write_atomically

HYDRA_SUBDIR = ".hydra"  # hydra.output_subdir of a run


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> "RunDir":
        """The run a checkpoint of `checkpoints/` belongs to."""
        return cls(Path(checkpoint).parent.parent)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.ckpt"

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def hydra(self) -> Path:
        return self.path / HYDRA_SUBDIR

    @property
    def spikes(self) -> Path:
        return self.path / "spikes.jsonl"

    @property
    def data(self) -> Path:
        return self.path / "data.json"

    @property
    def status(self) -> Path:
        return self.path / "status.json"

    @property
    def samples(self) -> Path:
        return self.path / "samples.json"

    def evaluation(self, name: str) -> Path:
        return self.path / f"evaluation-{name}.json"

    def record_ending(self, state: str, message: str) -> None:
        """How the run ended, in its status.json (one rank writes it): what a sweep's summary reads."""
        if int(os.environ.get("SLURM_PROCID", os.environ.get("RANK", "0"))) == 0 and self.path.is_dir():
            write_atomically(
                self.status, lambda partial: partial.write_text(json.dumps({"state": state, "message": message}))
            )
