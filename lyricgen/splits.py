"""The ids of a configured corpus's splits outside training (evaluation, generation), and the n-gram memory a
run's training mixed in, rebuilt from its training split."""

import sys
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from lyricgen import UserError, idcache
from lyricgen.config import RUN_CONFIG, load_run_config
from lyricgen.ngram import Mixture, memory_mixture

WINDOW_KEYS = ("batch_size", "seq_len", "val_chars", "train_chars")  # data keys of batching, not of the text


def split_ids(
    data: DictConfig, split: str, labelled: bool, limit: int | None = None
) -> tuple[torch.Tensor, str, torch.Tensor | None, list]:
    """(ids, vocabulary, each character's label or None, label names) of a split of the configured corpus,
    from the encoded-ids cache; only its first `limit` characters are read when a limit is given."""
    resolved = OmegaConf.to_container(data, resolve=True)  # prepared_dir names ${paths.output_dir}
    source = {key: value for key, value in resolved.items() if key not in WINDOW_KEYS}
    encoded = idcache.encoded_corpus(**source, labelled=labelled)
    ids = getattr(encoded, split)[:limit].read()
    if not len(ids) and split == "test":
        raise UserError(
            "this corpus has no test split: train with data.test_fraction=0.05 (say) so the test songs are "
            "held out from training, then evaluate split=test with the same data settings"
        )
    label_ids = encoded.label_ids[split][:limit].read() if labelled else None
    return ids, encoded.vocab, label_ids, encoded.labels


def in_vocabulary(ids: torch.Tensor, vocab: str, model_vocab: str, drop_unknown: bool = False) -> torch.Tensor:
    """Ids over `vocab` as ids over the model's vocabulary; characters the model never saw are refused,
    or dropped with `drop_unknown`."""
    lookup = torch.tensor([model_vocab.find(char) for char in vocab], dtype=torch.long)
    mapped = lookup[ids.long()]
    unknown = sorted({vocab[i] for i in ids[mapped < 0].unique().tolist()})
    if unknown and not drop_unknown:
        raise UserError(f"the text has characters the model's vocabulary lacks: {''.join(unknown)!r}")
    return mapped[mapped >= 0]


def run_memory(run_dir: Path, model_vocab: str, labelled: bool) -> Mixture | None:
    """The n-gram memory a run's training mixed in: its memory settings, counted on its own corpus's
    training characters. None for a run without one, a checkpoint outside its run directory, or a run
    whose corpus is gone."""
    if not (run_dir / RUN_CONFIG).is_file():
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
