"""Songs with a form: stanzas in an order, lines per stanza, a rhyme scheme, a chorus written once and sung
again, all from the network's own distribution.

from lyricgen.nn import load_checkpoint
from lyricgen.nn.forms import song_text
model, vocab = load_checkpoint("outputs/runs/<time>/checkpoints/best.ckpt")
print(song_text(model, vocab, "verse,chorus,verse,chorus,bridge:none,chorus", seed=1))

A form is stanza names in order, each `name` or `name:SCHEME`. A scheme gives each line a letter: lines
with the same letter rhyme (AABB, ABAB, ABCB), a `.` line rhymes with none; `none` is unrhymed lines
(lyricgen.quality.scorecard.form_of reads a real song's form in this grammar). A stanza named chorus, refrain or
hook is written at its first place and repeated word for word at the others; any other name is written
anew each time. Stanzas are parted by a blank line, as real songs are.

How a line is made to rhyme: the line is sampled as free sampling would write it (temperature, top-k,
label, guidance and memory included); if its last word does not rhyme with its partner's, the last word is
sampled again from the network, letter by letter, among the words that rhyme (CMUdict's), ENDINGS times,
and the ending the network finds likeliest is kept: the network's own choice of ending, conditioned on
rhyming (one word sampled letter by letter can commit to a rare one: "thal" leaves only "thalidomide").
A line that a later line must rhyme with gets a last word CMUdict knows the same way, so there is a sound
to rhyme with. Every line is conditioned to be non-empty (a line break cannot open it) and ends at its line
break, at its first space after `wrap` characters (as a lyric sheet wraps a long line), or at MAX_LINE
characters. The generator is the only source of randomness, so a seed makes the same song.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from lyricgen import UserError, charset
from lyricgen.nn.networks import device_of, evaluating
from lyricgen.nn.sampling import (
    check_guidance,
    check_sampling,
    default_prime,
    guided_logits,
    one_step_kernels,
    sample_next,
)
from lyricgen.quality.scorecard import MOST_LINES, REPEATS, Words, known_words, rhymes, rhyming_words, words

WRAP = 60  # characters: a line longer than this ends at its next space (a lyric sheet's width; 0: never)
MAX_LINE = 120  # characters: a line that has not ended by then is cut (real lyrics' lines are far shorter)
NAME = re.compile(r"[A-Za-z][\w-]*")
SCHEME = re.compile(r"[A-Z.]+")
LAST_WORD = re.compile(r"[A-Za-z']+[^A-Za-z']*$")  # a line's last word and what follows it
ENDINGS = 8  # last words sampled among the rhymes; the likeliest kept (one forced letter by letter can go astray)
UNLIKELY = -1e30  # a score no temperature can lift: what a line break opening a line gets


@dataclass(frozen=True)
class Stanza:
    name: str
    scheme: str  # a letter per line (the same letter rhymes); "." for an unrhymed line

    @property
    def repeated(self) -> bool:
        return self.name.lower().startswith(REPEATS)


def parse_form(form: str, rhyme: str = "AABB", lines: int = 4) -> list[Stanza]:
    """The stanzas of `form` ("verse,chorus,verse,chorus,bridge:none,chorus"); a stanza without a scheme
    takes `rhyme`, and `none` is `lines` unrhymed lines. One line for anything else."""
    if not isinstance(lines, int) or isinstance(lines, bool) or not 1 <= lines <= MOST_LINES:
        raise UserError(f"lines={lines} is invalid: use a whole number of lines per stanza from 1 to {MOST_LINES}")
    stanzas, schemes = [], {}
    for item in [part.strip() for part in str(form).split(",")]:
        name, _, scheme = item.partition(":")
        if not NAME.fullmatch(name):
            raise UserError(
                f"form={form}: {item!r} is not a stanza: use names in order, each optionally with its rhyme "
                "scheme, e.g. form=verse:ABAB,chorus:AABB,verse,chorus,bridge:none,chorus"
            )
        stanza = Stanza(name, scheme_lines(scheme or rhyme, lines))
        if stanza.repeated and schemes.setdefault(name, stanza.scheme) != stanza.scheme:
            raise UserError(f"form={form}: {name} is sung again word for word, so it takes one scheme")
        stanzas.append(stanza)
    return stanzas


def check_wrap(wrap: int) -> None:
    if not isinstance(wrap, int) or isinstance(wrap, bool) or not 0 <= wrap <= MAX_LINE:
        raise UserError(f"wrap={wrap} is invalid: use a whole number of characters from 0 (no wrapping) to {MAX_LINE}")


def most_characters(stanzas: list[Stanza]) -> int:
    """The most characters a song of this form can have: every line at MAX_LINE, with its breaks."""
    return sum(len(stanza.scheme) * (MAX_LINE + 1) + 1 for stanza in stanzas)


def scheme_lines(scheme: str, lines: int) -> str:
    """A scheme as a letter per line: AABB as it is, none as `lines` unrhymed lines."""
    if scheme.lower() == "none":
        return "." * lines
    if not SCHEME.fullmatch(scheme) or len(scheme) > MOST_LINES:
        raise UserError(
            f"rhyme scheme {scheme!r} is invalid: use a capital letter per line (AABB, ABAB, ABCB; . for a line "
            "that rhymes with none) or none"
        )
    return scheme


@dataclass(frozen=True)
class State:
    """Where a song stands: the network's state after the text so far, its scores for the next character,
    and the latest characters the n-gram memory reads."""

    hidden: object
    logits: torch.Tensor
    recent: torch.Tensor


class SongWriter:
    """Writes a song's lines from the network, one State to the next."""

    def __init__(self, model: nn.Module, vocab: str, settings: dict, generator: torch.Generator, wrap: int = 0) -> None:
        if "\n" not in vocab:
            raise UserError("form= writes lines, and this model's vocabulary has no line break: leave form out")
        self.model, self.vocab, self.settings, self.generator, self.wrap = model, vocab, settings, generator, wrap
        self.newline = vocab.index("\n")
        memory = settings["memory"]
        self.context = memory.context if memory else 1
        self.known: WordEnding | None = None

    def fed(self, state: State | None, text: str) -> State:
        """The state after running `text` through the network from `state` (teacher forcing)."""
        ids = charset.encode(text, self.vocab).long().unsqueeze(0).to(device_of(self.model))
        hidden = None if state is None else state.hidden
        logits, hidden = guided_logits(self.model, ids, hidden, self.settings["label"], self.settings["guidance"])
        recent = ids if state is None else torch.cat([state.recent, ids], dim=1)
        return State(hidden, logits[:, -1], recent[:, -self.context :])

    def line(self, state: State, partner: str | None, leads: bool) -> str:
        """A line (without its line break) from `state`; its last word rhyming with `partner`'s last word if
        given, or one CMUdict knows if a later line `leads` from it. A line whose stem no word can end as
        asked stays as it came."""
        line, _ = self.sampled(state, lambda scores, text: scores)
        partner_end = last_word(partner or "")
        if partner_end and not ends_rhyme(line, partner):
            wanted = WordEnding(self.vocab, rhyming_words(partner_end))
        elif not partner_end and leads and last_word(line) not in known_words():
            wanted = self.known_ending()
        else:
            return line
        stem = LAST_WORD.sub("", line)
        after_stem = self.fed(state, stem) if stem else state
        endings = [self.sampled(after_stem, wanted) for _ in range(ENDINGS)]
        found = [
            (likelihood, end)
            for end, likelihood in endings
            if end is not None and last_word(stem + end) in wanted.words
        ]
        return stem + max(found)[1] if found else line

    def known_ending(self) -> "WordEnding":
        """Endings among the CMUdict words this vocabulary spells (filtered once a song, not once a line)."""
        if self.known is None:
            self.known = WordEnding(self.vocab, known_words())
        return self.known

    def sampled(
        self, state: State, allowed: Callable[[torch.Tensor, str], torch.Tensor | None]
    ) -> tuple[str | None, float]:
        """Text from `state` up to its line break (which cannot come first) or MAX_LINE characters, each
        character sampled from the scores `allowed(scores, text so far)` leaves (None when it leaves none),
        and the text's log-likelihood under the network's own scores."""
        settings, memory = self.settings, self.settings["memory"]
        logits, hidden, recent, text, likelihood = state.logits, state.hidden, state.recent, "", 0.0
        for position in range(MAX_LINE):
            own = logits if memory is None else memory.next_log_probs(logits, recent)
            scores = allowed(own, text)
            if scores is None:
                return None, likelihood
            if position == 0:  # a line is not empty: sampled as if conditioned on not opening with a break
                scores = scores.clone()
                scores[:, self.newline] = UNLIKELY
            next_id = sample_next(scores, settings["temperature"], settings["top_k"], self.generator)
            likelihood += float(own[0].float().log_softmax(-1)[int(next_id)])
            if int(next_id) == self.newline or (
                self.wrap and len(text) >= self.wrap and self.vocab[int(next_id)] == " "
            ):
                break  # a line past `wrap` characters ends at its next space, as a lyric sheet wraps it
            text += self.vocab[int(next_id)]
            step = next_id.unsqueeze(1)
            recent = torch.cat([recent, step], dim=1)[:, -self.context :]
            with one_step_kernels():
                logits, hidden = guided_logits(self.model, step, hidden, settings["label"], settings["guidance"])
            logits = logits[:, -1]
        return text, likelihood


class WordEnding:
    """Scores that leave only the spellings of a word from `words`, then an optional mark (, . ! ?), then
    the line break: the network's next character, conditioned on the line ending on one of them."""

    def __init__(self, vocab: str, words: Words) -> None:
        spelled = set(vocab.lower())  # only words the vocabulary spells: no ending is begun that cannot end
        self.vocab, self.words = vocab, Words(word for word in words.sorted if spelled.issuperset(word))
        self.letters = [index for index, char in enumerate(vocab) if char.isalpha() or char == "'"]
        self.marks = [index for index, char in enumerate(vocab) if char in ",.!?"]
        self.newline = vocab.index("\n")

    def __call__(self, scores: torch.Tensor, text: str) -> torch.Tensor | None:
        word = text.lower()
        if word and word[-1] in ",.!?":
            open_ = [self.newline] if word[:-1] in self.words else []
        else:
            open_ = [index for index in self.letters if self.words.begun_by(word + self.vocab[index].lower())]
            open_ += [self.newline, *self.marks] if word in self.words else []
        if not open_:
            return None
        kept = torch.full_like(scores, UNLIKELY)
        kept[:, open_] = scores[:, open_]
        return kept


def last_word(line: str) -> str:
    return (words(line) or [""])[-1]


def ends_rhyme(line: str, partner: str) -> bool:
    return bool(last_word(line) and last_word(partner)) and rhymes(last_word(line), last_word(partner))


@torch.no_grad()
def write_song(
    model: nn.Module,
    vocab: str,
    stanzas: list[Stanza],
    prime: str,
    generator: torch.Generator,
    temperature: float = 0.8,
    top_k: int | None = None,
    label: int | None = None,
    memory: object = None,
    guidance: float = 1.0,
    wrap: int = WRAP,
) -> Iterator[str]:
    """The song's text after `prime`, a line (or a repeated stanza) at a time, with its line breaks."""
    check_sampling(temperature, top_k, 0, guidance)
    check_guidance(model, label, guidance)
    settings = {"temperature": temperature, "top_k": top_k, "label": label, "memory": memory, "guidance": guidance}
    check_wrap(wrap)
    writer = SongWriter(model, vocab, settings, generator, wrap)
    sung: dict[str, str] = {}
    with evaluating(model):
        state = writer.fed(None, prime)
        for number, stanza in enumerate(stanzas):
            gap = "\n" if number < len(stanzas) - 1 else ""  # the blank line between stanzas
            if stanza.repeated and stanza.name in sung:
                state = writer.fed(state, sung[stanza.name] + gap)
                yield sung[stanza.name] + gap
                continue
            lines: list[str] = []
            for position, letter in enumerate(stanza.scheme):
                partners = [line for line, other in zip(lines, stanza.scheme, strict=False) if other == letter != "."]
                leads = letter != "." and letter in stanza.scheme[position + 1 :]
                line = writer.line(state, partners[-1] if partners else None, leads)
                ending = "\n" + (gap if position == len(stanza.scheme) - 1 else "")
                state = writer.fed(state, line + ending)
                lines.append(line)
                yield line + ending
            if stanza.repeated:
                sung[stanza.name] = "".join(line + "\n" for line in lines)


def song_text(
    model: nn.Module,
    vocab: str,
    form: str,
    prime: str | None = None,
    seed: int = 0,
    rhyme: str = "AABB",
    lines: int = 4,
    **sampling: object,
) -> str:
    """A song in `form` after `prime` (default: a line break), the same for the same seed; `sampling` as
    write_song takes it (temperature, top_k, label, memory, guidance, wrap)."""
    check_sampling(0.0, None, 0, 1.0, seed)
    stanzas = parse_form(form, rhyme, lines)
    generator = torch.Generator().manual_seed(seed)
    prime = default_prime(vocab) if prime is None else prime
    return "".join(write_song(model, vocab, stanzas, prime, generator, **sampling))
