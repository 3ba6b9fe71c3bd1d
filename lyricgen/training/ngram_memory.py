"""The n-gram memory a run's training mixed in, rebuilt from its run directory and its training split:
what generate and evaluate mix in, so that they give what training showed."""

import sys
from pathlib import Path

from lyricgen import UserError
from lyricgen.data.encoded import in_vocabulary, split_ids
from lyricgen.nn.ngram import Mixture, memory_mixture
from lyricgen.rundir import RunDir, load_run_config


def run_ngram_memory(run_dir: Path, model_vocab: str, labelled: bool) -> Mixture | None:
    """The n-gram memory a run's training mixed in: its memory settings, counted on its own corpus's
    training characters. None for a run without one, a checkpoint outside its run directory, or a run
    whose corpus is gone."""
    if not RunDir(run_dir).config.is_file():
        print(f"note: no n-gram memory: no config.yaml beside the checkpoint in {run_dir}", file=sys.stderr)
        return None
    run = load_run_config(run_dir)
    if not run.memory.order:
        return None
    counted = min(run.memory.max_chars, run.data.train_chars or run.memory.max_chars)  # as training counted
    try:
        ids, vocab, _, _ = split_ids(run.data, "train", labelled, limit=counted)  # a big corpus: its prefix only
    except UserError as err:  # the memory is an extra: the network works alone
        print(f"note: no n-gram memory, its training text is not at hand: {err}", file=sys.stderr)
        return None
    return memory_mixture(in_vocabulary(ids, vocab, model_vocab), len(model_vocab), **run.memory)
