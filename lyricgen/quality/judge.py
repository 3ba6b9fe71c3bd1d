"""An independent genre judge: naive Bayes over character n-grams, fitted on each label's training text.

It shares nothing with lyricgen's models (no network, no n-gram memory), so a sample it recognises as a
genre reads like that genre's training text, not merely like what the sampling model believes of it.
"""

import math
from collections import Counter

ORDER = 4  # n-grams of 1 to 4 characters: spelling, short words and their joins
SMOOTHING = 0.1  # additive (Lidstone) smoothing of each n-gram count


def ngrams(text: str, n: int) -> Counter:
    return Counter(text[i : i + n] for i in range(len(text) - n + 1))


class NgramJudge:
    """The label whose training text makes a text's character n-grams most likely (uniform prior)."""

    def __init__(self, texts: dict[str, str], order: int = ORDER, smoothing: float = SMOOTHING):
        self.labels, self.order, self.smoothing = list(texts), order, smoothing
        self.counts = {label: [ngrams(text, n) for n in range(1, order + 1)] for label, text in texts.items()}
        self.totals = {label: [sum(count.values()) for count in counts] for label, counts in self.counts.items()}
        self.kinds = [len(set().union(*(counts[n] for counts in self.counts.values()))) for n in range(order)]

    def log_likelihood(self, text: str, label: str) -> float:
        total = 0.0
        for n in range(self.order):
            counts, denominator = self.counts[label][n], self.totals[label][n] + self.smoothing * self.kinds[n]
            for gram, times in ngrams(text, n + 1).items():
                total += times * math.log((counts[gram] + self.smoothing) / denominator)
        return total

    def classify(self, text: str) -> str:
        return max(self.labels, key=lambda label: self.log_likelihood(text, label))

    def accuracy(self, texts: list[str], label: str) -> float:
        """The share of `texts` judged to be of `label`."""
        return sum(self.classify(text) == label for text in texts) / len(texts)
