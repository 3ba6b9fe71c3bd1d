"""The Hydra plumbing: the command line checked before anything heavy is imported (cli), the resolvers the
YAML files use (registered when this package is imported), the stacked launcher and the sweep callback."""

from lyricgen.hydra import resolvers  # noqa: F401  (registers ${scaled:...} and the others)
