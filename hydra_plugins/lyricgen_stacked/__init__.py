"""Where Hydra finds lyricgen's stacked launcher and listed sweeper: Hydra takes plugins only from classes
defined in the hydra_plugins namespace, so these subclasses are all there is here (lyricgen.hydra.launcher,
lyricgen.hydra.sweeps)."""

from lyricgen.hydra import launcher, sweeps


class StackedLauncher(launcher.StackedLauncher):
    """`hydra/launcher=stacked` (conf/hydra/launcher/stacked.yaml)."""


class ListedSweeper(sweeps.ListedSweeper):
    """`hydra/sweeper=listed` (conf/hydra/sweeper/listed.yaml)."""
