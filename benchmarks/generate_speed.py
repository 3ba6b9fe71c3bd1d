"""Generation throughput (characters/s) on the CPU: one sample, and 16 samples in one batch.

Run: `make bench` or `python benchmarks/generate_speed.py`. Weights are random: speed does not depend on them.
"""

import torch
from common import median_rate, write_result

from lyricgen.nn.charrnn import CharRNN
from lyricgen.nn.sampling import generate

MEASURES = (
    "lyricgen/nn",
    "lyricgen/generate.py",
    "lyricgen/training/generation.py",
    "benchmarks/generate_speed.py",
)  # the code these numbers depend on (benchmarks/stale.py)

VOCAB = 90  # about the built-in corpus's vocabulary
MODELS = {
    "default (2-layer LSTM 256, embedding)": dict(cell="lstm", num_layers=2, hidden_size=256, input="embedding"),
    "paper best (4-layer ReLU RNN 100, one-hot)": dict(cell="rnn", num_layers=4, hidden_size=100, nonlinearity="relu"),
}
LENGTH = 500


def chars_per_second(model: CharRNN, samples: int) -> float:
    prime = torch.zeros(samples, 1, dtype=torch.long)

    def work() -> int:
        generate(model, prime, LENGTH, temperature=0.8, generator=torch.Generator().manual_seed(0))
        return samples * LENGTH

    return median_rate(work)


def main() -> None:
    torch.set_num_threads(1)  # generation of one character is too small to split across threads
    rows = []
    for name, options in MODELS.items():
        model = CharRNN(VOCAB, **options)
        for samples in (1, 16):
            rate = chars_per_second(model, samples)
            rows.append({"model": name, "samples": samples, "chars_per_s": round(rate)})
            print(f"{name:45s} {samples:3d} sample(s): {rate:10,.0f} chars/s")
    print(f"wrote {write_result('generate', {'length': LENGTH, 'rows': rows}, MEASURES)}")


if __name__ == "__main__":
    main()
