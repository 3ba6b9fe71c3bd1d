"""A checkpoint's loss and bits per character on the validation or test split of the corpus its run
trained on, of another corpus, or of any text file, label by label where the corpus has labels, with and
without the run's n-gram memory: what `python -m lyricgen.evaluate` prints and writes."""

import math
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from lyricgen import UserError, charset
from lyricgen.config import CONF_DIR, labelled_by_file, validate
from lyricgen.data import corpus
from lyricgen.data.encoded import in_vocabulary, split_ids
from lyricgen.data.windows import VAL_BATCH_SIZE, consecutive_windows
from lyricgen.nn.charrnn import sequence_loss
from lyricgen.nn.checkpoints import find_checkpoint, load_checkpoint, pick_device
from lyricgen.nn.networks import device_of, evaluating, null_label
from lyricgen.nn.ngram import Mixture
from lyricgen.nn.sampling import check_guidance, guided_logits, label_index, sample_texts
from lyricgen.quality.scorecard import pieces_of, score
from lyricgen.rundir import RunDir, load_run_config, run_network
from lyricgen.training.ngram_memory import run_ngram_memory

# conf/evaluate.yaml's own keys; the rest of the composed config is a run's
EVALUATE_KEYS = tuple(key for key in OmegaConf.load(CONF_DIR / "evaluate.yaml") if key not in ("defaults", "hydra"))
SPLITS = ("val", "test")
REAL_CHARS = 200_000  # the scored split's first characters cut into real pieces for the scorecard


def sample_scorecard(model: nn.Module, vocab: str, real: str, cfg: DictConfig, label: int | None) -> dict:
    """The lyrics scorecard (lyricgen.quality.scorecard) of cfg.samples samples of cfg.sample_length
    characters (seeds from 0, one batch, in `label`), beside the scored text cut into pieces of that length."""
    if not cfg.samples:
        return {}
    guidance = cfg.guidance if label is not None else 1.0  # guidance steers towards a label: none, none to steer
    texts = sample_texts(model, vocab, cfg.samples, length=cfg.sample_length, label=label, guidance=guidance)
    real_pieces = pieces_of(real, cfg.sample_length, max(cfg.samples, 10))
    return {
        "scorecard": {
            "samples": score(texts, real=real_pieces).as_dict(),
            "scored_text": score(real_pieces, real=real_pieces).as_dict(),
            "label": None if label is None else model.labels[label],
        }
    }


def corpus_config(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> DictConfig:
    """The data config to score: the run's own unless the command line's `overrides` name data keys."""
    if RunDir(run_dir).config.is_file() and not any(item.lstrip("+~").startswith("data") for item in overrides):
        return load_run_config(run_dir).data
    run_config = OmegaConf.masked_copy(cfg, [key for key in cfg if key not in EVALUATE_KEYS])
    validate(run_config)
    return cfg.data


@torch.no_grad()
def mean_loss(
    model: nn.Module,
    ids: torch.Tensor,
    seq_len: int,
    label: int | None = None,
    memory: Mixture | None = None,
    guidance: float = 1.0,
) -> dict:
    """Scores (cross-entropy in nats per character, bits, characters scored) over consecutive windows of
    `ids`, each scored from a fresh state as validation does (the tail shorter than a window is left
    out); a conditioned model writes in `label`, with `guidance` (lyricgen.nn.sampling.guided_logits).
    With a `memory`, the mixture's scores too."""
    check_guidance(model, label, guidance)
    if len(ids) <= seq_len:
        raise UserError(f"the text has {len(ids)} characters: fewer than one window (data.seq_len+1={seq_len + 1})")
    inputs, targets = consecutive_windows(ids, seq_len).tensors
    device = device_of(model)
    total = with_memory = 0.0
    with evaluating(model):
        for first in range(0, len(inputs), VAL_BATCH_SIZE):
            batch = inputs[first : first + VAL_BATCH_SIZE].to(device)
            batch_targets = targets[first : first + VAL_BATCH_SIZE].to(device)
            logits, _ = guided_logits(model, batch, None, label, guidance)
            total += float(sequence_loss(logits, batch_targets)) * batch.numel()
            if memory is not None:
                with_memory += float(memory.loss(batch, logits, batch_targets)) * batch.numel()
    return scores(total / targets.numel(), targets.numel(), None if memory is None else with_memory / targets.numel())


def scores(loss: float, characters: int, loss_with_memory: float | None = None) -> dict:
    """An evaluation's numbers; with the n-gram memory's mixture when there is one."""
    result = {"characters": characters, "loss": loss, "bpc": loss / math.log(2)}
    if loss_with_memory is None:
        return result
    return result | {"loss_with_memory": loss_with_memory, "bpc_with_memory": loss_with_memory / math.log(2)}


def label_scores(
    model: nn.Module,
    model_vocab: str,
    text: tuple[torch.Tensor, str, torch.Tensor, list],
    seq_len: int,
    drop: bool,
    memory: Mixture | None = None,
    guidance: float = 1.0,
) -> dict[str, dict]:
    """Each label's held-out characters, in order, scored on their own (in that label, for a conditioned
    model). `text`: (ids, vocabulary, each character's label, label names); `drop`: characters the model
    never saw are dropped instead of refused (a model trained on one label only); `memory` and `guidance`
    as for mean_loss."""
    ids, vocab, label_ids, names = text
    results = {}
    for index, name in enumerate(names):
        if model.labels and name not in model.labels:
            raise UserError(f"the corpus has label {name!r}, which this model does not know: {', '.join(model.labels)}")
        own = in_vocabulary(ids[label_ids == index], vocab, model_vocab, drop)
        label = model.labels.index(name) if model.labels else None
        results[name] = mean_loss(model, own, seq_len, label, memory, guidance)
    return results


def has_labels(data: DictConfig) -> bool:
    """Whether a corpus's characters carry labels any model can be scored by: a book each (songbooks,
    data.files), or each song's genre in a lyrics CSV that keeps several."""
    several_genres = data.source == "lyrics_csv" and len(data.get("genres") or ()) > 1
    return labelled_by_file(data.source, data.get("files")) or several_genres


def evaluate(cfg: DictConfig, overrides: list[str] = ()) -> dict:
    """The numbers of one evaluation; see conf/evaluate.yaml for the options. `overrides`: the command
    line's, which say whether to score the run's own corpus. A labelled corpus (has_labels, or any corpus
    of a conditioned model) is also scored label by label, whether or not the model was trained on labels."""
    if cfg.split not in SPLITS:
        raise UserError(f"split={cfg.split} is not a split: use split=val or split=test (or text=<file>)")
    path = find_checkpoint(cfg.ckpt, cfg.paths.output_dir)
    device = pick_device(cfg.device)
    run_dir = RunDir.of_checkpoint(path).path
    model, model_vocab = load_checkpoint(path, device, trusted=[run_network(run_dir)])
    data = corpus_config(cfg, run_dir, list(overrides))
    memory = run_ngram_memory(run_dir, model_vocab, bool(model.labels)) if cfg.with_memory else None
    result = {"checkpoint": str(path)}
    if cfg.text:
        text = "".join(corpus.read_text_file(cfg.text))
        vocab = charset.build_vocab(text)
        ids = in_vocabulary(charset.encode(text, vocab), vocab, model_vocab)
        label = label_index(model, cfg.genre)
        scored = mean_loss(model, ids, data.seq_len, label, memory, cfg.guidance)
        lyrics = sample_scorecard(model, model_vocab, text, cfg, label)
        return result | {"scored": f"text {cfg.text}"} | scored | lyrics
    result["scored"] = f"{cfg.split} split of data={data.source}"
    ids, vocab, label_ids, names = split_ids(data, cfg.split, bool(model.labels) or has_labels(data))
    label = label_index(model, cfg.genre) if model.labels and (cfg.genre or null_label(model) is None) else None
    result |= sample_scorecard(model, model_vocab, charset.decode(ids[:REAL_CHARS], vocab), cfg, label)
    if label_ids is None:
        return result | mean_loss(model, in_vocabulary(ids, vocab, model_vocab), data.seq_len, memory=memory)
    text = (ids, vocab, label_ids, names)
    per_label = label_scores(model, model_vocab, text, data.seq_len, drop=False, memory=memory, guidance=cfg.guidance)
    characters = sum(entry["characters"] for entry in per_label.values())
    overall = {
        key: sum(entry[key] * entry["characters"] for entry in per_label.values()) / characters
        for key in ("loss", "loss_with_memory")
        if key in per_label[names[0]]
    }
    return result | scores(characters=characters, **overall) | {"per_label": per_label}
