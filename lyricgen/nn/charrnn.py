"""CharRNN, lyricgen's network, in plain PyTorch: a notebook or another training loop can use it without
Lightning. Sampling from it: lyricgen.nn.sampling."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lyricgen.config import CELLS, CONDITION_ON
from lyricgen.nn import kernels

CELL_CLASSES = dict(zip(CELLS, (nn.RNN, nn.GRU, nn.LSTM), strict=True))


class CharRNN(nn.Module):
    """Characters in, next-character logits out: input encoding -> recurrent stack -> linear decoder.

    On a CPU, RNN and GRU stacks run through lyricgen.nn.kernels (one autograd node per layer instead of
    several per character: faster at every batch size, docs/speed.md); LSTMs, and every cell on a GPU, run as one
    nn.LSTM/GRU/RNN call over (batch, seq). Dropout sits between layers and on the top layer's output, as
    in karpathy/char-rnn, so it regularises a 1-layer model too; input_dropout acts on each step's input.

    With `labels` (genres, sources) the model is conditioned: a learned `label_dim`-wide embedding of each
    character's label joins its input at every step (condition_on=input), sets the initial state (state),
    or both; forward and sampling then take the labels. Without labels nothing changes. With
    `label_dropout` a share of the training windows get the null label (`null_label`, one past the real
    ones) instead of theirs, so the same model also learns the unlabelled text: it can then write without
    a genre, and sampling can use the difference between the two for guidance (lyricgen.nn.sampling).
    """

    # Defaults: conf/model/rnn.yaml, the paper's baseline (a test keeps the two equal).
    def __init__(
        self,
        vocab_size: int,
        cell: str = "rnn",
        num_layers: int = 1,
        hidden_size: int = 100,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        nonlinearity: str = "tanh",
        input: str = "onehot",
        embed_dim: int = 64,
        labels: Sequence[str] = (),
        label_dim: int = 16,
        condition_on: str = "input",
        label_dropout: float = 0.0,
    ):
        super().__init__()
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embed_dim) if input == "embedding" else None
        self.labels, self.condition_on = list(labels), condition_on
        if condition_on not in CONDITION_ON:
            raise ValueError(f"condition_on={condition_on!r}: use one of {CONDITION_ON}")
        self.label_dropout = label_dropout
        self.null_label = len(self.labels) if labels and label_dropout else None
        self.label_embedding = nn.Embedding(len(labels) + (self.null_label is not None), label_dim) if labels else None
        if self.label_embedding is not None:  # zero: the model starts as the unconditioned one and learns from the
            nn.init.zeros_(self.label_embedding.weight)  # every label starts as no label: it learns only what helps
        on_input = bool(labels) and condition_on in ("input", "both")
        self.label_state = (
            nn.Linear(label_dim, num_layers * hidden_size) if labels and condition_on in ("state", "both") else None
        )
        cell_options = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        self.rnn = CELL_CLASSES[cell](
            (embed_dim if self.embedding else vocab_size) + (label_dim if on_input else 0),
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,  # nn.RNN warns about dropout with a single layer
            **cell_options,
        )
        self.dropout, self.input_dropout = dropout, input_dropout
        self.decoder = nn.Linear(hidden_size, vocab_size)

    def encode_input(self, ids: torch.Tensor) -> torch.Tensor:
        return self.as_vectors(ids) if self.embedding is None else self.embedding(ids)  # one-hot: the paper's

    def forward(
        self, ids: torch.Tensor, hidden: torch.Tensor | tuple | None = None, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, object]:
        """ids (batch, seq) -> logits (batch, seq, vocab) and the final hidden state. A conditioned model
        takes each character's label too: `labels` (batch, seq)."""
        logits, hidden, _ = self.run(ids, hidden, labels)
        return logits, hidden

    def run(
        self, ids: torch.Tensor, hidden: torch.Tensor | tuple | None = None, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, object, tuple[torch.Tensor, torch.Tensor]]:
        """forward, and the top layer's outputs before and after its dropout, (batch, seq, hidden) each: what
        activation regularisation (lyricgen.training.module) penalises."""
        if self.labels and labels is None:
            raise ValueError(f"this model is conditioned on labels {self.labels}: pass labels")
        if self.training and self.null_label is not None:
            labels = self.with_null_labels(labels)
        if hidden is None and self.label_state is not None:
            hidden = self.initial_state(labels[:, 0])
        if self.runs_on_cpu_kernels(ids):
            ids = ids.t()  # time-major: each step's rows are contiguous
            inputs = ids if self.embedding is None else self.embedding(ids)  # one-hot as indices: a lookup
            inputs = self.with_labels(self.dropped_input(inputs), None if labels is None else labels.t())
            output, hidden = kernels.recurrent_stack(self.rnn, inputs, hidden)
            dropped = kernels.dropout(output, self.dropout, self.training)
            outputs = output.transpose(0, 1), dropped.transpose(0, 1)  # batch-major views
            return self.decoder(dropped).transpose(0, 1), hidden, outputs
        output, hidden = self.rnn(self.with_labels(self.dropped_input(self.encode_input(ids)), labels), hidden)
        dropped = kernels.dropout(output, self.dropout, self.training)
        return self.decoder(dropped), hidden, (output, dropped)

    def with_null_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Label dropout: each window (a row of labels) is given the null label with probability label_dropout."""
        dropped = torch.rand(len(labels), 1, device=labels.device) < self.label_dropout
        return labels.masked_fill(dropped, self.null_label)

    def dropped_input(self, inputs: torch.Tensor) -> torch.Tensor:
        """Input dropout while training: single elements of each step's input vector are zeroed at random,
        so the model cannot lean on any one feature of the current character (docs/measurements.md)."""
        if not (self.training and self.input_dropout):
            return inputs
        return kernels.dropout(self.as_vectors(inputs), self.input_dropout, training=True)

    def as_vectors(self, inputs: torch.Tensor) -> torch.Tensor:
        """One-hot ids spelled out as vectors (the kernels take them as indices, a lookup; dropout and labels
        need the vectors); vectors pass through."""
        if inputs.is_floating_point():
            return inputs
        return F.one_hot(inputs, self.vocab_size).to(self.decoder.weight.dtype)

    def with_labels(self, inputs: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The step inputs with each character's label embedding beside it (condition_on input or both)."""
        if self.label_embedding is None or self.condition_on == "state":
            return inputs
        inputs = self.as_vectors(inputs)
        return torch.cat([inputs, self.label_embedding(labels).to(inputs.dtype)], dim=-1)

    def initial_state(self, labels: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The hidden state a window starts from, made from its first character's label (condition_on state
        or both): (layers, batch, hidden), and a zero cell state for an LSTM."""
        state = torch.tanh(self.label_state(self.label_embedding(labels)))
        state = state.view(len(labels), self.rnn.num_layers, self.rnn.hidden_size).transpose(0, 1).contiguous()
        return (state, torch.zeros_like(state)) if isinstance(self.rnn, nn.LSTM) else state

    def runs_on_cpu_kernels(self, ids: torch.Tensor) -> bool:
        """RNN and GRU sequences on a CPU, in full precision (CPU autocast would hand the kernels mixed
        dtypes). A single step (generation) stays one nn.RNN/GRU call: the kernels' per-layer setup costs
        more than they save there (docs/speed.md)."""
        return (
            ids.size(1) > 1
            and ids.device.type == "cpu"
            and isinstance(self.rnn, nn.RNN | nn.GRU)
            and not torch.is_autocast_enabled("cpu")
            and self.decoder.weight.dtype in (torch.float32, torch.float64)
        )


def sequence_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over every position of logits (batch, seq, vocab) and targets (batch, seq).
    The CPU kernels' logits are a (batch, seq) view of time-major memory: flattening them time-major
    avoids copying them (and their gradient) back to batch-major order."""
    if not logits.is_contiguous() and logits.transpose(0, 1).is_contiguous():
        logits, targets = logits.transpose(0, 1), targets.t()
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
