"""Reference training loops for the benchmarks. They are measuring sticks, NOT used by lyricgen.

- skeleton_steps: the homework code the paper forked (spro/practical-pytorch char-rnn-generation):
  embedding -> RNN/GRU/LSTM -> linear, batch 1, 200-character chunks, the model called once per
  character in a Python loop, Adam, cross-entropy summed over the chunk.
- raw_steps: a plain PyTorch loop with lyricgen's own CharRNN, loss and batches, clipping as lyricgen's default.
- BabyGPT, train_baby_gpt: the small causal transformer lyricgen races in time_to_quality.py, nanoGPT's
  model, optimiser and schedule; `python references.py PATH ITERS EVAL_EVERY [BATCH]` runs that race's
  transformer side in its own process.
"""

import json
import math
import sys
import time
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from lyricgen.nn.charrnn import CELL_CLASSES, CharRNN, sequence_loss

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
    from lyricgen.data.windows import (
        RandomWindows,  # here: it loads Lightning, which the transformer's race must not wait for
    )

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


class CausalSelfAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, width = x.shape
        q, k, v = (t.view(batch, seq, self.heads, -1).transpose(1, 2) for t in self.qkv(x).split(width, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(batch, seq, width))


class Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width, bias=False), nn.LayerNorm(width, bias=False)
        self.attention = CausalSelfAttention(width, heads)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width, bias=False), nn.GELU(), nn.Linear(4 * width, width, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class BabyGPT(nn.Module):
    """nanoGPT's model at its CPU "baby GPT" shape (4 layers, 4 heads, 128 wide, block 64, no dropout, no
    biases, tied input and output embeddings, GPT-2 initialisation)."""

    def __init__(self, vocab: int, layers: int = 4, heads: int = 4, width: int = 128, block: int = 64):
        super().__init__()
        self.token = nn.Embedding(vocab, width)
        self.position = nn.Embedding(block, width)
        self.blocks = nn.Sequential(*(Block(width, heads) for _ in range(layers)))
        self.norm = nn.LayerNorm(width, bias=False)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.token.weight
        for name, parameter in self.named_parameters():
            if parameter.dim() == 2:  # residual projections scaled down by depth, as GPT-2
                std = 0.02 / math.sqrt(2 * layers) if name.endswith(("proj.weight", "mlp.2.weight")) else 0.02
                nn.init.normal_(parameter, std=std)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.size(1), device=ids.device)
        return self.head(self.norm(self.blocks(self.token(ids) + self.position(positions))))


def nanogpt_lr(step: int, iters: int, lr: float = 1e-3, warmup: int = 100, min_lr: float = 1e-4) -> float:
    """nanoGPT's schedule (config/train_shakespeare_char.py): linear warm-up, then cosine to min_lr."""
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    progress = min(1.0, (step - warmup) / max(1, iters - warmup))
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (lr - min_lr)


def shakespeare_ids(path: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(train ids, validation ids, vocabulary size): nanoGPT's split, the last 10% held out, which is
    lyricgen's data=text split with val_fraction 0.1 (read here without lyricgen's imports, so start-up
    is the loop's own)."""
    with open(path, encoding="utf-8") as file:
        text = file.read()
    index = {char: i for i, char in enumerate(sorted(set(text)))}  # a dict: list.index cost 1.6 s of the race
    ids = torch.tensor([index[char] for char in text], dtype=torch.uint8)
    cut = int(len(ids) * 0.9)
    return ids[:cut], ids[cut:], len(index)


def baby_gpt_race(path: str, iters: int, eval_every: int, batch: int = 12) -> None:
    """Train BabyGPT on Tiny Shakespeare (train_baby_gpt), printing a JSON line {time, step, val_loss} at
    every evaluation: the mean cross-entropy over consecutive block-wide windows of the first 100,000
    held-out characters (lyricgen's validation characters)."""
    train, val, vocab = shakespeare_ids(path)
    torch.manual_seed(0)
    model = BabyGPT(vocab)
    for point in train_baby_gpt(model, train, val[:100_000], iters, eval_every, batch):
        print(json.dumps(point), flush=True)


def train_baby_gpt(
    model: BabyGPT, train: torch.Tensor, val: torch.Tensor, iters: int, eval_every: int, batch: int
) -> Iterator[dict]:
    """nanoGPT's loop: random windows, AdamW (betas 0.9/0.99, weight decay 0.1 on matrices), clipping at
    1.0 and nanoGPT's schedule over `iters`; yields {time, step, val_loss} every `eval_every` iterations
    and at the last."""
    block = model.position.num_embeddings
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99))
    val_windows = val[torch.arange((len(val) - 1) // block).unsqueeze(1) * block + torch.arange(block + 1)].long()
    generator = torch.Generator().manual_seed(0)
    for step in range(iters):
        starts = torch.randint(len(train) - block - 1, (batch, 1), generator=generator)
        chunk = train[starts + torch.arange(block + 1)].long()
        for group in optimizer.param_groups:
            group["lr"] = nanogpt_lr(step, iters)
        loss = F.cross_entropy(model(chunk[:, :-1]).flatten(0, 1), chunk[:, 1:].flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if (step + 1) % eval_every == 0 or step + 1 == iters:
            yield {"time": time.time(), "step": step + 1, "val_loss": evaluate(model, val_windows)}


@torch.no_grad()
def evaluate(model: nn.Module, windows: torch.Tensor, batch: int = 64) -> float:
    model.eval()
    total = sum(
        F.cross_entropy(model(rows[:, :-1]).flatten(0, 1), rows[:, 1:].flatten(), reduction="sum").item()
        for rows in windows.split(batch)
    )
    model.train()
    return round(total / windows[:, 1:].numel(), 4)


if __name__ == "__main__":  # python references.py PATH ITERS EVAL_EVERY [BATCH]: the transformer's race
    baby_gpt_race(sys.argv[1], *(int(arg) for arg in sys.argv[2:]))
