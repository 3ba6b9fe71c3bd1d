"""A network of your own, trained and sampled by lyricgen: `conf/model/tiny_gru.yaml` beside it names this
class in `_target_`, and its other keys arrive here as arguments (docs/training.md#your-own-network)."""

from collections.abc import Sequence

import torch
from torch import nn


class TinyGRU(nn.Module):
    """Embedding -> GRU -> linear. The contract lyricgen needs (lyricgen.nn.networks): built as
    TinyGRU(vocab_size, labels=..., **options), keeps `labels`, and forward(ids, hidden, labels) returns
    (logits, hidden)."""

    def __init__(self, vocab_size: int, labels: Sequence[str] = (), width: int = 64):
        super().__init__()
        self.labels = list(labels)
        self.embedding = nn.Embedding(vocab_size, width)
        self.label_embedding = nn.Embedding(len(self.labels), width) if self.labels else None
        self.gru = nn.GRU(width, width, batch_first=True)
        self.decoder = nn.Linear(width, vocab_size)

    def forward(
        self, ids: torch.Tensor, hidden: torch.Tensor | None = None, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = self.embedding(ids)
        if self.label_embedding is not None:  # a conditioned model: each character's label joins its input
            inputs = inputs + self.label_embedding(labels)
        output, hidden = self.gru(inputs, hidden)
        return self.decoder(output), hidden
