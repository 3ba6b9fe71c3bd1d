"""What counts as a gradient spike, in one place: for the run's live forensics (training.callbacks) and
for the report read afterwards (lyricgen.report), so both name the same steps.

A step's gradient norm (before clipping) is a spike when it exceeds `ratio` times the normal norm: the
median of the medians of the HISTORY blocks of BLOCK steps before its own block. Medians, so that the
spikes themselves do not raise the bar; blocks, so that it costs one sort per BLOCK steps.
"""

import statistics
from collections import deque

BLOCK = 50  # steps per block: batch-1 gradient norms are too noisy to compare with single steps
HISTORY = 10  # blocks before a step that define "normal" for it: nothing is a spike in the first 500 steps


class GradNormal:
    """The normal gradient norm, kept step by step."""

    def __init__(self) -> None:
        self.block: list[float] = []
        self.block_medians: deque[float] = deque(maxlen=HISTORY)

    def level(self) -> float | None:
        """The normal norm for the next step; None until HISTORY blocks are in."""
        return statistics.median(self.block_medians) if len(self.block_medians) == HISTORY else None

    def is_spike(self, norm: float, ratio: float) -> bool:
        level = self.level()
        return level is not None and norm > ratio * level

    def add(self, norm: float) -> None:
        self.block.append(norm)
        if len(self.block) == BLOCK:
            self.block_medians.append(statistics.median(self.block))
            self.block = []
