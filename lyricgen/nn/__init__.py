"""The network in plain PyTorch: CharRNN, its CPU kernels, the n-gram memory, sampling, checkpoints and the
contract a plugged-in network keeps (networks). Nothing here imports Lightning, pandas, Hydra or the
corpora, so a checkpoint generates text anywhere."""

from lyricgen.nn.charrnn import CharRNN
from lyricgen.nn.checkpoints import load_checkpoint
from lyricgen.nn.networks import build_network
from lyricgen.nn.sampling import sample_text

__all__ = ["CharRNN", "build_network", "load_checkpoint", "sample_text"]
