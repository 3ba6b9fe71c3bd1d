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
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lyricgen import UserError, one_line_errors
from lyricgen.config import as_typed
from lyricgen.generate import GenerateConfig, Paths, load, option, options, sampled
from lyricgen.rundir import RunDir

MAX_LENGTH = 5000  # characters a page asks for at most: longer samples are for lyricgen.generate
COMPARED = 4  # samples side by side
# The page is sent the text at most this often: an update per character costs the page more than sampling
# the character does, and the stream would fall behind the sampler (the closing note of the playground).
REFRESH_S = 0.05


@dataclass
class PlayConfig:
    host: str = option("127.0.0.1", "the address to serve on; 0.0.0.0 lets other machines in (only when you want that)")
    port: int = option(7860, "the port to serve on")
    paths: Paths = field(default_factory=Paths)


def parse_args(argv: list[str]) -> PlayConfig:
    try:
        merged = OmegaConf.merge(OmegaConf.structured(PlayConfig), OmegaConf.from_dotlist(argv))
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        names = ", ".join(name for name, _, _ in options(PlayConfig))
        raise UserError(f"{str(err).splitlines()[0]} (options: {names})") from None


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


@functools.lru_cache(maxsize=4)
def loaded(ckpt: str, modified: float, with_memory: bool, output_dir: str) -> tuple:
    """A checkpoint's model, vocabulary and memory, kept while it is in use (`modified` renews it when the
    file changes)."""
    return load(GenerateConfig(ckpt=ckpt, with_memory=with_memory, device="cpu", paths=Paths(output_dir)))


def model_for(cfg: GenerateConfig) -> tuple:
    from lyricgen.nn.checkpoints import find_checkpoint

    path = find_checkpoint(cfg.ckpt, cfg.paths.output_dir)
    return loaded(str(path), path.stat().st_mtime, cfg.with_memory, cfg.paths.output_dir)


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
        ]
        if value != getattr(defaults, name) or name == "ckpt"
    ]
    return "python -m lyricgen.generate " + " ".join(shlex.quote(item) for item in given)


def settings(output_dir: str, run: str, path: str, genre: str | None, prime: str, temperature: float,
             top_k: float | None, length: float, seed: float, memory: bool) -> GenerateConfig:  # fmt: skip
    """The page's fields as generate's settings; one UserError line for what cannot be used."""
    ckpt = (path or "").strip() or run
    if not ckpt:
        raise UserError("no run chosen: train one first (make train), or give a checkpoint path")
    if length is None or not 1 <= length <= MAX_LENGTH:
        raise UserError(f"length must be between 1 and {MAX_LENGTH} characters")
    return GenerateConfig(
        ckpt=ckpt,
        genre=genre or None,
        prime=prime or "\n",
        temperature=float(temperature),
        top_k=int(top_k) if top_k else None,
        length=int(length),
        seed=int(seed or 0),
        with_memory=bool(memory),
        paths=Paths(output_dir),
    )


def write_sample(cfg: GenerateConfig, text: str) -> str:
    """A file to download: the sample, and the command that makes it again."""
    folder = Path(tempfile.gettempdir()) / "lyricgen-play"
    folder.mkdir(exist_ok=True)
    path = folder / f"sample-seed{cfg.seed}.txt"
    path.write_text(f"{text}\n\n# {command_line(cfg)}\n", encoding="utf-8")
    return str(path)


def build(play: PlayConfig) -> "gradio.Blocks":  # noqa: F821 (imported inside: an optional extra)
    import gradio as gr

    output_dir = play.paths.output_dir
    choices = runs(output_dir)

    def labels_of(run: str, path: str) -> dict:
        try:
            cfg = settings(output_dir, run, path, None, "\n", 0.8, None, 1, 0, False)
            model = model_for(cfg)[0]
        except UserError:
            return gr.update(choices=[], value=None, visible=False)
        return gr.update(
            choices=model.labels, value=model.labels[0] if model.labels else None, visible=bool(model.labels)
        )

    def write(*fields: object) -> Iterator[tuple[str, str, str, object]]:
        try:
            cfg = settings(output_dir, *fields)
            parts, shown = [], -math.inf
            for pieces in sampled(cfg, *model_for(cfg)):
                parts.append(pieces[0])
                if time.monotonic() - shown >= REFRESH_S:  # the page keeps up with the sampler
                    yield "".join(parts), command_line(cfg), "", None
                    shown = time.monotonic()
            yield "".join(parts), command_line(cfg), "", write_sample(cfg, "".join(parts))
        except UserError as err:
            yield "", "", f"**error:** {err}", None

    def compare(by: str, values: str, *fields: object) -> list[str]:
        try:
            base = settings(output_dir, *fields)
            asked = [value.strip() for value in values.split(",") if value.strip()][:COMPARED]
            if by == "temperature":
                configs = [replace(base, temperature=float(value)) for value in asked]
            else:
                configs = [replace(base, genre=value) for value in asked]
            texts = ["".join(piece[0] for piece in sampled(cfg, *model_for(cfg))) for cfg in configs]
            titled = [f"{by} {value}:\n\n{text}" for value, text in zip(asked, texts, strict=True)]
            return [*titled, *[""] * (COMPARED - len(titled)), ""]
        except (UserError, ValueError) as err:
            return [*[""] * COMPARED, f"**error:** {err}"]

    with gr.Blocks(title="lyricgen playground") as page:
        gr.Markdown("# lyricgen playground\nPick a run, a genre and a temperature, and watch the song being written.")
        with gr.Row():
            run = gr.Dropdown(choices, value=choices[0][1] if choices else None, label="run", elem_id="run", scale=3)
            path = gr.Textbox(label="or a checkpoint path", elem_id="path", scale=2)
        with gr.Row():
            genre = gr.Dropdown([], label="genre", elem_id="genre", visible=False)
            prime = gr.Textbox("\n", label="prime", elem_id="prime", lines=2)
        with gr.Row():
            temperature = gr.Slider(0, 2, value=0.8, step=0.05, label="temperature", elem_id="temperature")
            top_k = gr.Number(None, label="top-k (0: all)", elem_id="top_k", precision=0)
            length = gr.Number(500, label="length", elem_id="length", precision=0)
            seed = gr.Number(0, label="seed", elem_id="seed", precision=0)
            memory = gr.Checkbox(True, label="n-gram memory (where the run's text is at hand)", elem_id="memory")
        fields = [run, path, genre, prime, temperature, top_k, length, seed, memory]
        with gr.Tab("write"):
            with gr.Row():
                go = gr.Button("generate", variant="primary", elem_id="generate")
                stop = gr.Button("stop", elem_id="stop")
            status = gr.Markdown(elem_id="status")
            text = gr.Textbox(label="sample", lines=16, elem_id="output", buttons=["copy"])
            again = gr.Textbox(label="the same sample from the command line", elem_id="command", buttons=["copy"])
            download = gr.File(label="download (sample and command)", elem_id="download")
            writing = go.click(write, fields, [text, again, status, download])
            stop.click(None, cancels=[writing])
        with gr.Tab("compare"):
            with gr.Row():
                by = gr.Radio(["temperature", "genre"], value="temperature", label="compare by", elem_id="by")
                values = gr.Textbox("0.5, 0.8, 1.1", label="values (comma-separated)", elem_id="values")
                side_by_side = gr.Button("compare", variant="primary", elem_id="compare")
            compared_status = gr.Markdown(elem_id="compare_status")
            with gr.Row():
                columns = [gr.Textbox(label=f"{i + 1}", lines=14, elem_id=f"column{i}") for i in range(COMPARED)]
            side_by_side.click(compare, [by, values, *fields], [*columns, compared_status])
        run.change(labels_of, [run, path], genre)
        path.change(labels_of, [run, path], genre)
        page.load(labels_of, [run, path], genre)
    return page


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if {"--help", "-h", "help"} & set(argv):
        shown = [(f"{name}={as_typed(default)}", meaning) for name, default, meaning in options(PlayConfig)]
        width = max(len(text) for text, _ in shown)
        print("usage: python -m lyricgen.play [option=value ...]\n\noptions (default shown):")
        print("\n".join(f"  {text:<{width}}  {meaning}" for text, meaning in shown))
        return
    play = parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no request leaves the machine
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UserError("the playground needs Gradio: pip install -e '.[play]' (make play installs it)") from None
    build(play).queue().launch(server_name=play.host, server_port=play.port, show_error=True)


if __name__ == "__main__":
    main()
