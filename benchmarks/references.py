"""Reference training loops for the benchmarks. They are measuring sticks, NOT used by lyricgen.

- skeleton_steps: the homework code the paper forked (spro/practical-pytorch char-rnn-generation):
  embedding -> RNN/GRU/LSTM -> linear, batch 1, 200-character chunks, the model called once per
  character in a Python loop, Adam, cross-entropy summed over the chunk.
- raw_steps: a plain PyTorch loop with lyricgen's own CharRNN, loss and batches, clipping as lyricgen's default.
"""

import time

import torch
import torch.nn.functional as F
from torch import nn

from lyricgen.data import RandomWindows
from lyricgen.model import CELL_CLASSES, CharRNN, sequence_loss

CHUNK = 200


class SkeletonRNN(nn.Module):
    def __init__(self, vocab: int, cell: str, num_layers: int, hidden_size: int, **options: object):
        super().__init__()
        extra = {"nonlinearity": options.get("nonlinearity", "tanh")} if cell == "rnn" else {}
        self.encoder = nn.Embedding(vocab, hidden_size)
        dropout = options.get("dropout", 0.0)
        self.rnn = CELL_CLASSES[cell](hidden_size, hidden_size, num_layers, dropout=dropout, **extra)
        self.decoder = nn.Linear(hidden_size, vocab)

    def forward(self, char: torch.Tensor, hidden: object) -> tuple[torch.Tensor, object]:
        output, hidden = self.rnn(self.encoder(char.view(1, -1)).view(1, 1, -1), hidden)
        return self.decoder(output.view(1, -1)), hidden


def skeleton_steps(model: SkeletonRNN, ids: torch.Tensor, steps: int) -> tuple[int, float]:
    """(characters trained, seconds) for `steps` iterations of the skeleton loop."""
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005)
    generator = torch.Generator().manual_seed(0)
    # One character at a time, oneDNN's LSTM is ~2-5x slower than torch's own kernel: keep the reference fair.
    with torch.backends.mkldnn.flags(enabled=False):
        start = time.perf_counter()
        for _ in range(steps):
            offset = int(torch.randint(len(ids) - CHUNK - 1, (1,), generator=generator))
            chunk = ids[offset : offset + CHUNK + 1].long()
            hidden = None
            optimizer.zero_grad()
            loss = 0.0
            for position in range(CHUNK):
                output, hidden = model(chunk[position], hidden)
                loss = loss + F.cross_entropy(output, chunk[position + 1].view(1))
            loss.backward()
            optimizer.step()
        return steps * CHUNK, time.perf_counter() - start


def raw_steps(
    model: CharRNN, ids: torch.Tensor, batch: int, seq_len: int, steps: int, bf16: bool = False
) -> tuple[int, float]:
    """(characters trained, seconds) for `steps` iterations of a plain PyTorch loop, on the model's device;
    bf16: under bf16 autocast, as lyricgen's trainer=gpu."""
    device = next(model.parameters()).device
    windows = RandomWindows(ids, batch, seq_len, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    start = time.perf_counter()
    for step in range(steps):
        inputs, targets = (tensor.to(device, non_blocking=True) for tensor in windows.batch(step))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits, _ = model(inputs)
            loss = sequence_loss(logits, targets)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        loss.item()  # what logging the loss costs (and, on a GPU, a sync per step as lyricgen's checks do)
    return steps * batch * seq_len, time.perf_counter() - start
