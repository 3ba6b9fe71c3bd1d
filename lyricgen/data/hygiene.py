"""What is not lyrics: guitar tablature and chord charts that scraped lyrics carry. Detect, drop, count.

Measured on real English rock lyrics: tablature pasted into 3 of 582 songs (~1% of the characters) set
off every loss spike of the paper's baseline (docs/reproduce.md). A line is dropped only when it is made of
nothing but tablature or chord names, so lyrics with dashes, bars or a capital letter stay:

    e|-----5h7-----|     E-------------|     |---15--13-15b17r13-|      tablature
    G   D   Em   C       Am F C G                                       chord chart
    Rock - and - roll    A B C, it's easy as     | I'm on my way |      lyrics, kept
"""

import re
from collections import Counter
from dataclasses import dataclass, field

KINDS = ("tablature", "chords")

# An optional string name (e, B, G#, ...), then only what tablature is written with: dashes, bars, fret
# numbers, technique letters and marks. No spaces: "- - -" is punctuation in a lyric, not a tab line.
_TAB_LINE = re.compile(r"^(?P<string>[A-Ga-g][#b]?)?(?P<body>[-|:0-9hpbrxvtsSPHBR/\\~*().=^]{4,})$")
_CHORD = re.compile(r"^[A-G][#b]?(?:m|maj|min|dim|aug|sus|add|M)?\d*(?:sus\d*|add\d+|maj\d*)?(?:/[A-G][#b]?)?$")


def is_tablature(line: str) -> bool:
    """A whole line of tablature: mostly dashes, with a string name, a bar or a fret number in it."""
    match = _TAB_LINE.match(line.strip())
    if not match:
        return False
    body = match["body"]
    dashes = body.count("-")
    marked = bool(match["string"]) or "|" in body or any(char.isdigit() for char in body)
    return dashes >= 4 and dashes >= 0.25 * len(body) and marked


def is_chord_chart(line: str) -> bool:
    """A line of chord names only: two or more, with a chord quality (Em, G7, Dsus4) or spaced out
    in columns as charts align them ("G   D   C"); "A B C" in a lyric is kept."""
    tokens = line.split()
    if len(tokens) < 2 or not all(_CHORD.match(token) for token in tokens):
        return False
    return any(len(token) > 1 for token in tokens) or "  " in line.strip()


DETECTORS = {"tablature": is_tablature, "chords": is_chord_chart}


@dataclass
class Removed:
    """What hygiene took out, by kind: lines, characters (line breaks included) and songs touched."""

    lines: Counter = field(default_factory=Counter)
    chars: Counter = field(default_factory=Counter)
    songs: Counter = field(default_factory=Counter)

    def add(self, other: "Removed") -> None:
        self.lines.update(other.lines)
        self.chars.update(other.chars)
        self.songs.update(other.songs)

    def as_dict(self) -> dict:
        return {
            kind: {"lines": self.lines[kind], "chars": self.chars[kind], "songs": self.songs[kind]} for kind in KINDS
        }


def kind_of(line: str) -> str | None:
    return next((kind for kind, detect in DETECTORS.items() if detect(line)), None)


def clean_song(song: str) -> tuple[str, Removed]:
    """The song without its tablature and chord lines (runs of blank lines left behind are folded into
    one), and what was removed."""
    removed, kept = Removed(), []
    for line in song.split("\n"):
        kind = kind_of(line)
        if kind is None:
            kept.append(line)
            continue
        removed.lines[kind] += 1
        removed.chars[kind] += len(line) + 1
    for kind in removed.lines:
        removed.songs[kind] = 1
    if not removed.lines:
        return song, removed
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip("\n"), removed


def clean_each(songs: list[str]) -> tuple[list[str], Removed]:
    """Each song cleaned, one for one (a song of tablature only becomes empty), and the totals removed."""
    total, cleaned = Removed(), []
    for song in songs:
        text, removed = clean_song(song)
        total.add(removed)
        cleaned.append(text)
    return cleaned, total


def clean_songs(songs: list[str]) -> tuple[list[str], Removed]:
    """Each song cleaned (songs left empty are dropped), and the totals removed."""
    cleaned, total = clean_each(songs)
    return [text for text in cleaned if text.strip()], total
