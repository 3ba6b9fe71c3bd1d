"""Where Hydra finds lyricgen's stacked launcher (Hydra accepts launchers from the hydra_plugins namespace
only); the launcher itself is lyricgen.stacking's."""

from lyricgen import stacking


class StackedLauncher(stacking.StackedLauncher):
    """`hydra/launcher=stacked` (conf/hydra/launcher/stacked.yaml)."""
