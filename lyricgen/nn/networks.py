"""Which class builds a run's network: lyricgen's CharRNN, or any class the config's model._target_ names.

The contract a network keeps (CharRNN keeps it; so must a plug-in):
- it is built as `Net(vocab_size, labels=[...], **the model config's other keys)` and keeps `.labels`;
- `forward(ids, hidden=None, labels=None)` takes ids (batch, seq) and, for a conditioned model, each
  character's label index (batch, seq), and returns logits (batch, seq, vocab) and the state to carry on
  from, which generation passes back in one character at a time;
- `run(...)`, only needed for activation regularisation: forward plus the top layer's outputs before and
  after dropout;
- `null_label`, only needed to write without a label and for guidance: the label index that stands for
  no label (CharRNN's with model.label_dropout), None or absent otherwise.

A checkpoint stores the network's import path and its plain options, never a pickled object, so it
loads with `torch.load(weights_only=True)`. Loading imports lyricgen's own classes; another class only
when the caller names it (the run's config, or generate's network=): importing a module runs its code.
"""

import importlib
import inspect
from collections.abc import Collection, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from lyricgen import UserError
from lyricgen.config import CHARRNN

NOT_NETWORK_OPTIONS = ("_target_", "condition")  # model config keys that are not the network's arguments


def network_class(target: str, trusted: Collection[str] = ()) -> type[nn.Module]:
    """The class at import path `target`, if it is lyricgen's or `trusted`, and an nn.Module."""
    if not (target.startswith("lyricgen.") or target in trusted):
        raise UserError(
            f"the network is {target}, not lyricgen's, and loading it runs that module's code: lyricgen imports it "
            f"only when you name it (the run's config.yaml beside its checkpoints, or generate's network={target})"
        )
    module_name, _, class_name = target.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as err:
        raise UserError(
            f"model._target_={target} cannot be imported ({err}): check the path, and that its module is "
            "importable from here (PYTHONPATH)"
        ) from None
    if not (isinstance(found, type) and issubclass(found, nn.Module)):
        raise UserError(f"model._target_={target} is not a torch.nn.Module class")
    return found


def build_network(vocab_size: int, spec: dict, trusted: Collection[str] = ()) -> nn.Module:
    """The network `spec` describes: `_target_` (CharRNN when absent), `labels` and the class's options."""
    target = spec.get("_target_", CHARRNN)
    options = {key: value for key, value in spec.items() if key not in NOT_NETWORK_OPTIONS}
    try:
        return network_class(target, trusted)(vocab_size, **options)
    except TypeError as err:
        raise UserError(f"{target} cannot be built from model.*: {err}") from None


def network_spec(model_options: dict, labels: Collection[str]) -> dict:
    """What a checkpoint stores to rebuild the network: the model config's keys that are the network's,
    its import path, and the labels the data gave it."""
    options = {key: value for key, value in model_options.items() if key != "condition"}
    return {"_target_": CHARRNN} | options | {"labels": list(labels)}


def saved_spec(hyperparameters: dict) -> dict:
    """A checkpoint's network spec: its `network` entry, or for a checkpoint written before networks could
    be plugged in, CharRNN's options among its flat hyperparameters."""
    if "network" in hyperparameters:
        return dict(hyperparameters["network"])
    from lyricgen.nn.charrnn import CharRNN

    names = list(inspect.signature(CharRNN).parameters)[1:]
    return {"_target_": CHARRNN} | {name: hyperparameters[name] for name in names if name in hyperparameters}


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode (no dropout of any kind) for the block, then back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def null_label(model: nn.Module) -> int | None:
    """The label index that stands for no label, for a model trained with label dropout; else None."""
    return getattr(model, "null_label", None)


def label_tensor(model: nn.Module, label: int | None, like: torch.Tensor) -> torch.Tensor | None:
    """`label` at every position of `like` (batch, seq), for a conditioned model (label None: its null
    label, if it has one); None for another."""
    if not model.labels:
        return None
    if label is None and null_label(model) is not None:
        label = null_label(model)
    elif label is None or not 0 <= label < len(model.labels):
        raise ValueError(f"this model writes in one of {model.labels}: pass label=<its index>")
    return torch.full_like(like, label)
