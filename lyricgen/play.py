"""A lyrics playground in the browser: `python -m lyricgen.play` (or `make play`), then open the address it
prints. Pick a run, a genre and a temperature, and watch the song being written; compare temperatures
or genres side by side; copy or download a sample with the command that makes it again.

It samples with lyricgen.generate's own code (same settings and seed, same text), loads checkpoints
with weights_only=True, and keeps the models it loaded. Needs the `play` extra (Gradio); serves on
127.0.0.1 unless host= says otherwise.
"""

import functools
import math
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from omegaconf import OmegaConf

from lyricgen import UserError, one_line_errors
from lyricgen.nn.checkpoints import find_checkpoint
from lyricgen.options import as_typed, help_text, option, parsed, wants_help
from lyricgen.quality.scorecard import SHOWN, score, shown, summary
from lyricgen.rundir import RunDir
from lyricgen.training.generation import GenerateConfig, Paths, characters_asked, check, load, sampled

COMPARED = 4  # samples side by side
INVITATION = "Pick a run, a genre and a temperature, and watch the song being written."
# The page is sent the text at most this often: an update per character costs the page more than sampling
# the character does, and the stream would fall behind the sampler (the closing note of the playground).
REFRESH_S = 0.05
NOT_OFFERED = "that checkpoint is not offered here: choose a run from the list"  # the same whether it exists or not


@dataclass
class PlayConfig:
    host: str = option("127.0.0.1", "the address to serve on; any other than 127.0.0.1 shares the page (see allow=)")
    port: int = option(7860, "the port to serve on")
    shared: bool | None = option(None, "true: the shared page's limits on any host (behind a proxy); null: by host")
    allow: list[str] = field(
        default_factory=list, metadata={"help": "shared: folders besides paths.output_dir whose runs may be loaded"}
    )
    auth: str | None = option(
        None, "user:password that visitors must give (Gradio's login); none: anyone who reaches it"
    )
    concurrency: int = option(4, "samples written at once; more visitors wait in the queue")
    queue: int = option(64, "requests waiting at most; more are refused with a line saying so")
    max_chars: int = option(5000, "characters one request may ask for: prime plus every sample's length")
    chars_per_minute: int = option(50000, "shared: characters one visitor may ask for in a minute")
    models: int = option(4, "models kept loaded, the least recently used dropped first")
    paths: Paths = field(default_factory=Paths)


def parse_args(argv: list[str]) -> PlayConfig:
    play = parsed(PlayConfig, argv)
    for name in ("concurrency", "queue", "max_chars", "chars_per_minute", "models"):
        if getattr(play, name) < 1:
            raise UserError(f"{name}={getattr(play, name)} is invalid: use an integer >= 1")
    if play.auth is not None and ":" not in play.auth:
        raise UserError("auth= is user:password")
    return play


def is_shared(host: str) -> bool:
    """Served beyond this machine: any address but the loopback ones."""
    return not (host == "localhost" or host == "::1" or host.startswith("127."))


def runs(output_dir: str) -> list[tuple[str, str]]:
    """(label, run directory) of every run with a checkpoint under `output_dir`, newest first; the label
    says what it is: model, corpus, steps and validation bits per character."""
    found = sorted(
        {RunDir.of_checkpoint(path).path for path in Path(output_dir).glob("**/checkpoints/*.ckpt")},
        key=lambda run: RunDir(run).checkpoints.stat().st_mtime,
        reverse=True,
    )
    return [(describe(run, output_dir), str(run)) for run in found]


def describe(run: Path, output_dir: str) -> str:
    saved = RunDir(run).config
    what = []
    if saved.is_file():
        cfg = OmegaConf.load(saved)
        model = cfg.get("model", {})
        shape = f"{model.get('num_layers', '?')}x{model.get('hidden_size', '?')}" if "cell" in model else ""
        what += [f"{model.get('cell', model.get('_target_', 'network'))} {shape}".strip()]
        what += [f"data={cfg.get('data', {}).get('source', '?')}"]
        what += [f"condition={model.condition}"] if model.get("condition") else []
        what += [f"{cfg.get('trainer', {}).get('max_steps', '?')} steps"]
    bpc = best_bpc(run)
    what += [f"val {bpc:.3f} bits/char"] if bpc is not None else []
    return f"{run.relative_to(output_dir) if run.is_relative_to(output_dir) else run} · {' · '.join(what)}"


def best_bpc(run: Path) -> float | None:
    """The best validation bits per character its checkpoint callback kept (None when unknown)."""
    from lyricgen.nn.checkpoints import read_checkpoint

    try:
        states = read_checkpoint(RunDir(run).last).get("callbacks", {})
    except UserError:
        return None
    scores = [state.get("best_model_score") for key, state in states.items() if "ModelCheckpoint" in str(key)]
    score = next((float(score) for score in scores if score is not None), None)
    return None if score is None else score / math.log(2)


def command_line(cfg: GenerateConfig) -> str:
    """The lyricgen.generate command that writes the same sample."""
    defaults = GenerateConfig()
    given = [
        f"{name}={as_typed(value)}"
        for name, value in [
            ("ckpt", cfg.ckpt),
            ("genre", cfg.genre),
            ("prime", cfg.prime),
            ("temperature", cfg.temperature),
            ("top_k", cfg.top_k),
            ("length", cfg.length),
            ("seed", cfg.seed),
            ("with_memory", cfg.with_memory),
            ("form", cfg.form),
        ]
        if value != getattr(defaults, name) or name == "ckpt"
    ]
    return "python -m lyricgen.generate " + " ".join(shlex.quote(item) for item in given)


def error_line(err: UserError) -> str:
    """The page's one line for a mistake: what the visitor typed is shown with its line breaks escaped."""
    return "**error:** " + str(err).replace("\r", "\\r").replace("\n", "\\n")


def whole(value: object, name: str) -> int:
    """A number field of the page as a whole number; one line for anything else (empty, NaN, 2.5, huge)."""
    try:
        number = float(value)
        if number.is_integer():
            return int(number)
    except (TypeError, ValueError, OverflowError):
        pass
    raise UserError(f"{name}={value} is invalid: use a whole number")


class Access:
    """What a visitor may load: on 127.0.0.1 any checkpoint, as on the command line; shared (another host),
    only runs under paths.output_dir and the `allow` folders, the path box off unless `allow` opens folders,
    no network class imported that is not lyricgen's, and no n-gram memory read from files outside them."""

    def __init__(self, play: PlayConfig) -> None:
        self.shared = is_shared(play.host) if play.shared is None else play.shared
        self.output_dir = play.paths.output_dir
        self.roots = [Path(folder).expanduser().resolve() for folder in [play.paths.output_dir, *play.allow]]
        self.path_box = not self.shared or bool(play.allow)

    def inside(self, path: str | Path) -> bool:
        try:
            resolved = Path(path).expanduser().resolve()  # through links: a link out of a folder leads out of it
        except (OSError, ValueError, RuntimeError):  # a NUL byte, a link loop, an unknown ~user
            return False
        return any(resolved.is_relative_to(root) for root in self.roots)

    def checkpoint(self, run: str, path: str) -> str:
        """The checkpoint (or run directory) a visitor asked for, if they may load it."""
        typed = (path or "").strip()
        if typed and not self.path_box:
            raise UserError("the checkpoint path box is off on a shared playground: choose a run from the list")
        chosen = typed or run
        if not chosen:
            raise UserError("no run chosen: train one first (make train), or give a checkpoint path")
        if not self.shared and not typed:
            return chosen
        if self.shared and not self.inside(chosen):
            raise UserError(NOT_OFFERED)
        try:
            found = find_checkpoint(chosen, self.output_dir)
        except (UserError, OSError, ValueError, RuntimeError):
            raise UserError(NOT_OFFERED if self.shared else f"checkpoint not found: {chosen!r}") from None
        if self.shared and not self.inside(found):
            raise UserError(NOT_OFFERED)
        return str(found)

    def memory_allowed(self, ckpt: str) -> bool:
        """Whether the run's training text (what its n-gram memory counts) may be read: always on
        127.0.0.1; shared, only a built-in corpus or files inside the offered folders."""
        if not self.shared:
            return True
        saved = RunDir.of_checkpoint(ckpt).config
        if not saved.is_file():
            return False
        data = OmegaConf.to_container(OmegaConf.load(saved)).get("data", {})
        files = [data.get("path"), data.get("csv"), *(data.get("files") or {}).values()]
        return data.get("source") in ("songs_poems", "songbooks") or all(self.inside(f) for f in files if f)


class Budget:
    """Characters each visitor asked for in the last minute: a shared page refuses a visitor past
    chars_per_minute, so one visitor cannot keep the CPU from the others."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.asked: dict[str, deque[tuple[float, int]]] = {}
        self.lock = threading.Lock()

    def spend(self, visitor: str, characters: int) -> None:
        now = time.monotonic()
        with self.lock:
            recent = self.asked.setdefault(visitor, deque())
            while recent and now - recent[0][0] > 60:
                recent.popleft()
            spent = sum(count for _, count in recent)
            if spent + characters > self.per_minute:
                raise UserError(
                    f"{spent + characters} characters asked for within a minute: this page allows "
                    f"{self.per_minute} a visitor (wait a little, or ask for fewer)"
                )
            recent.append((now, characters))


class Playground:
    """The page's work, apart from Gradio: settings from its fields (checked once, by generate's checks),
    models kept loaded (least recently used dropped), samples written, their downloads one per request."""

    def __init__(self, play: PlayConfig, downloads: Path) -> None:
        self.play, self.access, self.downloads = play, Access(play), downloads
        self.budget = Budget(play.chars_per_minute) if self.access.shared else None
        self.loaded = functools.lru_cache(maxsize=play.models)(self.load)
        self.loading = threading.Lock()  # visitors asking for a model not yet loaded wait for one load of it

    def load(self, ckpt: str, modified: float, with_memory: bool) -> tuple:
        """A checkpoint's model, vocabulary and memory (`modified` renews it when the file changes)."""
        cfg = GenerateConfig(ckpt=ckpt, with_memory=with_memory, device="cpu", paths=Paths(self.play.paths.output_dir))
        return load(cfg, trust_run=not self.access.shared)

    def model_for(self, cfg: GenerateConfig) -> tuple:
        path = find_checkpoint(cfg.ckpt, cfg.paths.output_dir)
        memory = cfg.with_memory and self.access.memory_allowed(path)
        with self.loading:
            return self.loaded(str(path), path.stat().st_mtime, memory)

    def settings(
        self, run: str, path: str, genre: str | None, prime: str, temperature: object, top_k: object,
        length: object, seed: object, memory: bool, form: str | None = None,
    ) -> GenerateConfig:  # fmt: skip
        """The page's fields as generate's settings, checked as generate checks them; one line otherwise."""
        try:
            temperature = float(temperature)
        except (TypeError, ValueError):
            raise UserError(f"temperature={temperature} is invalid: use a number") from None
        top_k = whole(top_k, "top_k") if top_k not in (None, "", 0) else None  # 0 or empty: all characters
        cfg = GenerateConfig(
            ckpt=self.access.checkpoint(run, path),
            genre=genre or None,
            prime=prime or "\n",
            temperature=temperature,
            top_k=top_k,
            length=whole(length, "length"),
            seed=whole(seed if seed not in (None, "") else 0, "seed"),
            with_memory=bool(memory),
            form=(form or "").strip() or None,
            paths=Paths(self.play.paths.output_dir),
        )
        check(cfg)
        return cfg

    def allowed(self, visitor: str, cfg: GenerateConfig, samples: int = 1) -> None:
        """The request's characters within the page's limits (max_chars; a shared page's per minute)."""
        asked = len(cfg.prime) + (characters_asked(cfg) - len(cfg.prime)) * samples
        if asked > self.play.max_chars:
            raise UserError(f"{asked} characters asked for: this page writes at most {self.play.max_chars} a request")
        if self.budget is not None:
            self.budget.spend(visitor, asked)

    def labels(self, run: str, path: str) -> list[str] | None:
        """The run's labels (genres), or None when it cannot be loaded."""
        try:
            first = {"genre": None, "prime": "\n", "temperature": 0.8, "top_k": None, "length": 1, "seed": 0}
            cfg = self.settings(run, path, **first, memory=True)  # as the page first asks: memory on
            return list(self.model_for(cfg)[0].labels)
        except UserError:
            return None

    def write(self, visitor: str, *fields: object) -> Iterator[tuple[str, str, str, str | None, str]]:
        """(text so far, its command line, an error line, the download and the scorecard once done), as the
        sample grows."""
        try:
            cfg = self.settings(*fields)
            self.allowed(visitor, cfg)
            parts, shown = [], -math.inf
            for pieces in sampled(cfg, *self.model_for(cfg)):
                parts.append(pieces[0])
                if time.monotonic() - shown >= REFRESH_S:  # the page keeps up with the sampler
                    yield "".join(parts), command_line(cfg), "", None, ""
                    shown = time.monotonic()
            text = "".join(parts)
            yield text, command_line(cfg), "", self.download(cfg, text), summary(scored(text[len(parts[0]) :]))
        except UserError as err:
            yield "", "", error_line(err), None, ""

    def compare(self, visitor: str, by: str, values: str, *fields: object) -> list[str]:
        """Up to COMPARED samples side by side, by temperature or genre, an error line, and their scorecards
        as a table."""
        try:
            base = self.settings(*fields)
            asked = [value.strip() for value in str(values).split(",") if value.strip()][:COMPARED]
            configs = [self.compared(base, by, value) for value in asked]
            for cfg in configs:
                check(cfg)
            self.allowed(visitor, base, len(configs))
            pieces = [list(sampled(cfg, *self.model_for(cfg))) for cfg in configs]
            texts = ["".join(piece[0] for piece in written) for written in pieces]
            titled = [f"{by} {value}:\n\n{text}" for value, text in zip(asked, texts, strict=True)]
            cards = [scored("".join(piece[0] for piece in written[1:])) for written in pieces]
            return [*titled, *[""] * (COMPARED - len(titled)), "", scorecard_table(by, asked, cards)]
        except UserError as err:
            return [*[""] * COMPARED, error_line(err), ""]

    @staticmethod
    def compared(base: GenerateConfig, by: str, value: str) -> GenerateConfig:
        if by == "genre":
            return replace(base, genre=value)
        if by != "temperature":
            raise UserError(f"compare by temperature or genre, not {by}")
        try:
            return replace(base, temperature=float(value))
        except ValueError:
            raise UserError(f"temperature {value!r} is not a number (values: comma-separated)") from None

    def download(self, cfg: GenerateConfig, text: str) -> str:
        """The sample and the command that makes it again, in a file of its own request: two visitors with
        the same seed never get each other's (files older than an hour are removed)."""
        for old in self.downloads.iterdir():
            if time.time() - old.stat().st_mtime > 3600:
                shutil.rmtree(old, ignore_errors=True)
        folder = Path(tempfile.mkdtemp(dir=self.downloads))
        path = folder / f"sample-seed{cfg.seed}.txt"
        path.write_text(f"{text}\n\n# {command_line(cfg)}\n", encoding="utf-8")
        return str(path)

    def opening_line(self) -> str:
        """What the page opens to whom, said once at start-up."""
        play, access = self.play, self.access
        where = f"http://{play.host}:{play.port}/"
        if not access.shared:
            return f"lyricgen playground at {where}: this machine only (host=127.0.0.1)"
        folders = ", ".join(str(root) for root in access.roots)
        who = "visitors with the password (auth=)" if play.auth else "anyone who reaches this address (no auth=)"
        box = "the path box open to those folders" if access.path_box else "the path box off"
        return (
            f"lyricgen playground shared at {where} with {who}: runs under {folders}, {box}; {play.concurrency} "
            f"samples at once, {play.queue} waiting, {play.max_chars} characters a request, "
            f"{play.chars_per_minute} a minute a visitor"
        )


class Page:
    """The page: Gradio's widgets around a Playground, each visitor told apart by their session. Gradio is
    the optional `play` extra, so it is imported only when the page is built."""

    def __init__(self, play: PlayConfig, downloads: Path):
        self.play, self.ground = play, Playground(play, downloads)
        self.choices = runs(play.paths.output_dir)
        if self.choices:  # the newest run loaded before the first visitor comes, as the page offers it first
            self.ground.labels(self.choices[0][1], "")

    def blocks(self) -> "gradio.Blocks":  # noqa: F821
        import gradio as gr

        # Gradio hands a handler the request where its signature asks for one, by this annotation
        def write(request: gr.Request, *fields: object) -> Iterator[tuple]:
            yield from self.ground.write(visitor(request), *fields)

        def compare(request: gr.Request, by: str, values: str, *fields: object) -> list[str]:
            return self.ground.compare(visitor(request), by, values, *fields)

        with gr.Blocks(title="lyricgen playground", delete_cache=(600, 3600)) as page:
            gr.Markdown(f"# lyricgen playground\n{INVITATION}")
            fields = self.fields(gr)
            with gr.Tab("write"):
                self.write_tab(gr, write, fields)
            with gr.Tab("compare"):
                self.compare_tab(gr, compare, fields)
            run, path, genre = fields[:3]
            run.change(self.labels_of, [run, path], genre, api_name="labels")
            path.change(self.labels_of, [run, path], genre, api_name=False)
            page.load(self.labels_of, [run, path], genre, api_name=False)
        print(self.ground.opening_line(), flush=True)
        return page

    def fields(self, gr: object) -> list:
        """The settings every request reads, in Playground.settings' order."""
        choices = self.choices
        with gr.Row():
            run = gr.Dropdown(choices, value=choices[0][1] if choices else None, label="run", elem_id="run", scale=3)
            path_box = self.ground.access.path_box
            path = gr.Textbox(label="or a checkpoint path", elem_id="path", scale=2, interactive=path_box)
        with gr.Row():
            genre = gr.Dropdown([], label="genre", elem_id="genre", visible=False)
            prime = gr.Textbox("\n", label="prime", elem_id="prime", lines=2)
        with gr.Row():
            temperature = gr.Slider(0, 2, value=0.8, step=0.05, label="temperature", elem_id="temperature")
            top_k = gr.Number(None, label="top-k (0: all)", elem_id="top_k", precision=0)
            length = gr.Number(500, label="length", elem_id="length", precision=0)
            seed = gr.Number(0, label="seed", elem_id="seed", precision=0)
            memory = gr.Checkbox(True, label="n-gram memory (where the run's text is at hand)", elem_id="memory")
        form = gr.Textbox(
            "", label="song form (empty: free text; e.g. verse:ABAB,chorus:AABB,verse:ABAB,chorus)", elem_id="form"
        )
        return [run, path, genre, prime, temperature, top_k, length, seed, memory, form]

    def write_tab(self, gr: object, write: Callable, fields: list) -> None:
        with gr.Row():
            go = gr.Button("generate", variant="primary", elem_id="generate")
            stop = gr.Button("stop", elem_id="stop")
        status = gr.Markdown(elem_id="status")
        text = gr.Textbox(label="sample", lines=16, elem_id="output", buttons=["copy"])
        again = gr.Textbox(label="the same sample from the command line", elem_id="command", buttons=["copy"])
        card = gr.Markdown(elem_id="scorecard")
        download = gr.File(label="download (sample and command)", elem_id="download")
        outputs = [text, again, status, download, card]
        writing = go.click(write, fields, outputs, api_name="write", concurrency_limit=self.play.concurrency)
        stop.click(None, cancels=[writing])

    def compare_tab(self, gr: object, compare: Callable, fields: list) -> None:
        with gr.Row():
            by = gr.Radio(["temperature", "genre"], value="temperature", label="compare by", elem_id="by")
            values = gr.Textbox("0.5, 0.8, 1.1", label="values (comma-separated)", elem_id="values")
            side_by_side = gr.Button("compare", variant="primary", elem_id="compare")
        status = gr.Markdown(elem_id="compare_status")
        with gr.Row():
            columns = [gr.Textbox(label=f"{i + 1}", lines=14, elem_id=f"column{i}") for i in range(COMPARED)]
        cards = gr.Markdown(elem_id="compare_scorecards")
        outputs = [*columns, status, cards]
        limit = self.play.concurrency
        side_by_side.click(compare, [by, values, *fields], outputs, api_name="compare", concurrency_limit=limit)

    def labels_of(self, run: str, path: str) -> dict:
        """The genre menu for a run: its labels, hidden for an unconditioned model."""
        import gradio as gr

        labels = self.ground.labels(run, path)
        if not labels:
            return gr.update(choices=[], value=None, visible=False)
        return gr.update(choices=labels, value=labels[0], visible=True)


def scored(text: str) -> dict:
    """A sample's scorecard (lyricgen.quality.scorecard), as the page shows it."""
    return score([text]).as_dict()


def scorecard_table(by: str, values: list[str], cards: list[dict]) -> str:
    """Compared samples' scorecards as a Markdown table: a column per sample."""
    lines = [f"| {by} | " + " | ".join(values) + " |", "|---" * (len(values) + 1) + "|"]
    lines += [
        f"| {label} | " + " | ".join(shown(card, name) for card in cards) + " |" for name, (label, _) in SHOWN.items()
    ]
    return "\n".join(lines)


def visitor(request: object) -> str:
    """Who asks: the visitor's address (a session's reloads and tabs share its budget)."""
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or getattr(request, "session_hash", None) or "unknown"


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print(help_text(PlayConfig, "play", "the lyrics playground: write, compare and score samples in the browser"))
        return
    play = parse_args(argv)
    for variable in ("GRADIO_ANALYTICS_ENABLED", "HF_HUB_DISABLE_TELEMETRY"):  # no request leaves the machine
        os.environ.setdefault(variable, "False" if variable.startswith("GRADIO") else "1")
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UserError("the playground needs Gradio: pip install -e '.[play]' (make play installs it)") from None
    auth = tuple(play.auth.split(":", 1)) if play.auth else None
    with tempfile.TemporaryDirectory(prefix="lyricgen-play-") as downloads:  # removed when the server stops
        page = Page(play, Path(downloads)).blocks().queue(max_size=play.queue)
        page.launch(server_name=play.host, server_port=play.port, show_error=True, auth=auth, quiet=True)


if __name__ == "__main__":
    main()
