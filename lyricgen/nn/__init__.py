"""The network in plain PyTorch: CharRNN, its CPU kernels, the n-gram memory and checkpoints. Nothing here
imports Lightning, pandas, Hydra or the corpora, so a checkpoint generates text anywhere."""

from lyricgen.nn.charrnn import CharRNN, sample_text
from lyricgen.nn.checkpoints import load_checkpoint

__all__ = ["CharRNN", "load_checkpoint", "sample_text"]
