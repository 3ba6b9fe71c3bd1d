"""The ids of a configured corpus's splits outside training (evaluation, generation, a run's n-gram memory
rebuilt from its training split)."""

import torch
from omegaconf import DictConfig, OmegaConf

from lyricgen import UserError, charset
from lyricgen.data import idcache

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


def split_text(data: DictConfig, split: str, limit: int | None = None) -> str:
    """A split of the configured corpus as text (its first `limit` characters)."""
    ids, vocab, _, _ = split_ids(data, split, labelled=False, limit=limit)
    return charset.decode(ids, vocab)


def label_texts(data: DictConfig, split: str, limit: int | None = None) -> dict[str, str]:
    """A labelled corpus's split as text, label by label (its first `limit` characters)."""
    ids, vocab, label_ids, names = split_ids(data, split, labelled=True, limit=limit)
    return {name: charset.decode(ids[label_ids == index], vocab) for index, name in enumerate(names)}


def in_vocabulary(ids: torch.Tensor, vocab: str, model_vocab: str, drop_unknown: bool = False) -> torch.Tensor:
    """Ids over `vocab` as ids over the model's vocabulary; characters the model never saw are refused,
    or dropped with `drop_unknown`."""
    lookup = torch.tensor([model_vocab.find(char) for char in vocab], dtype=torch.long)
    mapped = lookup[ids.long()]
    unknown = sorted({vocab[i] for i in ids[mapped < 0].unique().tolist()})
    if unknown and not drop_unknown:
        raise UserError(f"the text has characters the model's vocabulary lacks: {''.join(unknown)!r}")
    return mapped[mapped >= 0]
