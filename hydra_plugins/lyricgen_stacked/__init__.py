"""Where Hydra finds lyricgen's stacked launcher: Hydra takes launchers only from classes defined in the
hydra_plugins namespace, so this subclass is all there is here (the launcher: lyricgen.hydra.launcher)."""

from lyricgen.hydra import launcher


class StackedLauncher(launcher.StackedLauncher):
    """`hydra/launcher=stacked` (conf/hydra/launcher/stacked.yaml)."""
