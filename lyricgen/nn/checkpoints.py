"""Checkpoints, in one place: finding one (a file, a run directory, `latest`), reading it safely
(`torch.load(weights_only=True)`: a checkpoint file never runs code), loading its network for generation,
and moving its weights into a new network (`init_from`'s fine-tuning). No Lightning: a checkpoint written
by Lightning is read as the plain dictionary it is."""

import inspect
from collections.abc import Collection
from pathlib import Path

import torch
from torch import nn

from lyricgen import UserError
from lyricgen.nn.charrnn import CharRNN
from lyricgen.nn.networks import CHARRNN, build_network, saved_spec
from lyricgen.rundir import RunDir


def find_checkpoint(ckpt: str, outputs_dir: str | Path = "outputs") -> Path:
    """Resolve a .ckpt file, a run directory (its best checkpoint, else its last) or "latest"."""
    if ckpt == "latest":
        runs = [RunDir.of_checkpoint(path) for path in Path(outputs_dir).glob("**/checkpoints/*.ckpt")]
        if not runs:
            raise UserError(f"no checkpoints under {outputs_dir}/: train a model first, or pass ckpt=<file>")
        return find_checkpoint(str(max(runs, key=lambda run: run.checkpoints.stat().st_mtime).path))
    path = Path(ckpt).expanduser()
    if path.is_dir():
        run = RunDir(path)
        path = run.best if run.best.is_file() else run.last
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path} (pass ckpt=<.ckpt file | run dir | latest>)")
    return path


def pick_device(device: str) -> str:
    """cpu, cuda, or for "auto" cuda when there is one."""
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


def read_checkpoint(path: str | Path) -> dict:
    """A checkpoint's contents, loaded with weights_only so that a checkpoint file can never run code;
    whatever goes wrong (missing, corrupt, refused pickle) is one UserError line."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch reports corrupt files and refused pickles with many exception types
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot load checkpoint {path}: {first_line}") from None


# LyricLM holds its network as `model`, so Lightning's state dict names the network's weights model.*
WEIGHTS_PREFIX = "model."


def network_weights(checkpoint: dict, path: str | Path) -> tuple[dict, str, dict]:
    """(network spec, vocabulary, network state dict) of a lyricgen checkpoint's contents: the Lightning
    format (hyper_parameters, state_dict under "model."), read without importing Lightning."""
    try:
        hyperparameters = checkpoint["hyper_parameters"]
        state = checkpoint["state_dict"]
        weights = {name.removeprefix(WEIGHTS_PREFIX): v for name, v in state.items() if name.startswith(WEIGHTS_PREFIX)}
        return saved_spec(hyperparameters), hyperparameters["vocab"], weights
    except (KeyError, TypeError) as err:
        raise UserError(f"cannot load checkpoint {path}: not a lyricgen checkpoint ({type(err).__name__})") from None


def load_checkpoint(path: str | Path, device: str = "cpu", trusted: Collection[str] = ()) -> tuple[nn.Module, str]:
    """The network of a lyricgen checkpoint, in eval mode, and its vocabulary. A network class other than
    lyricgen's is imported only when `trusted` names it (lyricgen.nn.networks)."""
    spec, vocab, weights = network_weights(read_checkpoint(path), path)
    model = build_network(len(vocab), spec, trusted)
    try:
        model.load_state_dict(weights)
    except (KeyError, TypeError, RuntimeError) as err:
        what = f"not a lyricgen checkpoint of {spec.get('_target_')} ({type(err).__name__})"
        raise UserError(f"cannot load checkpoint {path}: {what}") from None
    return model.to(device).eval(), vocab


def structure(options: dict) -> dict:
    """The options that fix a CharRNN's weights' shapes and meaning (dropout does neither)."""
    keys = ["cell", "num_layers", "hidden_size", "input", "labels"]
    keys += ["condition_on", "label_dim"] if options["labels"] else []
    keys += ["embed_dim"] if options["input"] == "embedding" else []
    keys += ["nonlinearity"] if options["cell"] == "rnn" else []
    return {key: list(options[key]) if key == "labels" else options[key] for key in keys}


def vocabulary_axes(model: CharRNN) -> dict[str, int]:
    """The parameters with one row or column per character, and along which axis."""
    first_layer = ("embedding.weight", 0) if model.embedding is not None else ("rnn.weight_ih_l0", 1)
    return {"decoder.weight": 0, "decoder.bias": 0, first_layer[0]: first_layer[1]}  # one-hot: its first columns


def warm_start(model: nn.Module, vocab: str, spec: dict, path: str | Path) -> str:
    """Load a checkpoint's weights into `model`, a network over `vocab` built from `spec`, to train it
    further on other text. For a CharRNN the rows of characters both vocabularies hold are copied by
    character, the characters the checkpoint lacks keep `model`'s fresh rows (returned), and those it has
    but `vocab` lacks are dropped (the new text never asks for them). Another network needs the same
    vocabulary. A different structure is refused in one line."""
    theirs_spec, old_vocab, weights = network_weights(read_checkpoint(path), path)
    target = spec.get("_target_", CHARRNN)
    if theirs_spec["_target_"] != target:
        raise UserError(f"init_from={path} is a {theirs_spec['_target_']}, this run a {target}: drop init_from")
    if target != CHARRNN:
        return plugged_in_warm_start(model, vocab, old_vocab, weights, path)
    defaults = {name: p.default for name, p in inspect.signature(CharRNN).parameters.items()}
    theirs, ours = structure(defaults | theirs_spec), structure(defaults | spec)
    if theirs != ours:
        differ = ", ".join(
            f"{key}={theirs.get(key)} (this run: {ours.get(key)})" for key in ours if theirs.get(key) != ours[key]
        )
        raise UserError(f"init_from={path} has another network: {differ}; set model.* to match it, or drop init_from")
    shared = [char for char in vocab if char in old_vocab]
    new_rows = torch.tensor([vocab.index(char) for char in shared], dtype=torch.long)
    old_rows = torch.tensor([old_vocab.index(char) for char in shared], dtype=torch.long)
    axes = vocabulary_axes(model)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name in axes:
                tensor.index_copy_(axes[name], new_rows, weights[name].index_select(axes[name], old_rows))
            else:
                tensor.copy_(weights[name])
    return "".join(char for char in vocab if char not in old_vocab)


def plugged_in_warm_start(model: nn.Module, vocab: str, old_vocab: str, weights: dict, path: str | Path) -> str:
    """warm_start for a network lyricgen does not know the layout of: same vocabulary, same shapes."""
    if vocab != old_vocab:
        raise UserError(f"init_from={path}: a plugged-in network fine-tunes on text of the same vocabulary only")
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise UserError(f"init_from={path} has another network: {str(err).splitlines()[0]}") from None
    return ""
