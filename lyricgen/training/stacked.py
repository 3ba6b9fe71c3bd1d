"""Stacked training: several runs of one shape (lyricgen.hydra.launcher groups them) trained in one process by
one Lightning Trainer, as one stacked network (lyricgen.nn.stacked), each member still a run of its own.

Each member is the LyricLM and LyricsDataModule its solo run would build (same seed, same initial
weights, same windows), with its own Adam (and schedule), clipping norm, divergence guard, dropout
generator (seeded where its solo run's global RNG stands), TensorBoard logger, step metrics, text
samples and spike forensics, validation and checkpoints, and its own length. Its run directory is what
its solo run writes: the checkpoints are in Lightning's format, with the member's weights, optimiser,
loops and RNG state, so `resume=` continues a member alone, and a stack resumes from its members' last
checkpoints. A member that reaches its last step leaves the stack (validated and saved there), as does
one that diverges (its last good checkpoint kept); the others go on, and the stack computes only them.
"""

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader

from lyricgen import Diverged, UserError
from lyricgen.data.windows import LyricsDataModule, RandomWindows, StackedWindows, private_generator
from lyricgen.nn.checkpoints import WEIGHTS_PREFIX, read_checkpoint
from lyricgen.nn.networks import evaluating
from lyricgen.nn.stacked import member_losses, stacked_logits
from lyricgen.rundir import RunDir
from lyricgen.training.callbacks import (
    CheckpointOnSignal,
    FinishAtLastStep,
    SpikeForensics,
    StepMetrics,
    TextSamples,
)
from lyricgen.training.fit import (
    AtomicCheckpointIO,
    build_run,
    log_run_config,
    print_summary,
    start_of,
    trainer_options,
    tune_process,
)
from lyricgen.training.module import LyricLM, RunLoop
from lyricgen.training.scoring import mean_loss

# What a member's solo Trainer would hold besides the recorded curves: its two checkpoint callbacks.
BEST = {"monitor": "val/loss", "filename": "best", "enable_version_counter": False}
LAST = {"save_top_k": 0, "save_last": True, "enable_version_counter": False}
# A sweep's directory is timestamped: the same command continues the stack once it names that directory.
CONTINUE_STACK = "each run saved its last.ckpt; continue them with the same command and hydra.sweep.dir={sweep}"
# What the stack's and its members' checkpoints share: the loops' progress, which all members make together
PROGRESS = ("epoch", "global_step", "pytorch-lightning_version", "loops")


class MemberLoop(RunLoop):
    """A member's loop, as LyricLM and its records read it (LyricLM.train_in): the step and stopping of the
    stack's Trainer; the member's own length, logger, optimiser and directory."""

    def __init__(self, trainer: L.Trainer, member: "Member"):
        super().__init__(trainer)
        self.member = member

    loggers = property(lambda loop: [loop.member.logger])
    is_global_zero = property(lambda loop: True)  # a stack trains in one process
    sanity_checking = property(lambda loop: False)  # the stack validates its members itself, with no sanity check
    optimizer = property(lambda loop: loop.member.optimizer)
    max_steps = property(lambda loop: loop.member.length)  # its schedule's length: its own, not the stack's
    run_dir = property(lambda loop: loop.member.run_dir)
    scaler = property(lambda loop: None)  # a stack trains in 32-bit precision (lyricgen.hydra.launcher)


@dataclass
class Member:
    """One run of the stack: its config, directory, module, data and what records it."""

    cfg: DictConfig
    run_dir: Path
    module: LyricLM
    datamodule: LyricsDataModule
    generator: torch.Generator  # its dropout masks: the global RNG's state where its solo run starts training
    logger: TensorBoardLogger
    ending: Diverged | None = None  # set when it diverges: it trains no further
    done: bool = False  # set at its last step: it trains no further
    optimizer: torch.optim.Optimizer | None = None
    scheduler: object = None
    loop: MemberLoop | None = None
    val_losses: tuple[float, float | None] = (math.nan, None)  # the last validation's, without and with the memory
    best: ModelCheckpoint = field(init=False)
    last: ModelCheckpoint = field(init=False)
    records: list[Callback] = field(init=False)

    def __post_init__(self) -> None:
        checkpoints = RunDir(self.run_dir).checkpoints
        self.best = ModelCheckpoint(dirpath=checkpoints, **BEST)
        self.last = ModelCheckpoint(dirpath=checkpoints, every_n_train_steps=self.cfg.checkpoint.every_n_steps, **LAST)
        spikes = SpikeForensics(self.cfg.spikes.grad_ratio, self.cfg.spikes.loss_jump)
        self.records = [
            StepMetrics(progress_bar=False),
            TextSamples(self.cfg.sample_length, RunDir(self.run_dir)),
            spikes,
        ]

    @property
    def training(self) -> bool:
        return self.ending is None and not self.done

    @property
    def length(self) -> int:
        return self.cfg.trainer.max_steps

    def call(self, hook: str, *args: object) -> None:
        """A callback hook on each of the member's records, with the stack's Trainer and the member's module
        (whose loop tells the records what is the member's own)."""
        for record in self.records:
            getattr(record, hook)(self.loop.trainer, self.module, *args)

    def best_score(self) -> float:
        score = self.best.best_model_score
        return math.inf if score is None else float(score)


class MemberOptimizers(torch.optim.Optimizer):
    """The members' optimisers as the one optimiser Lightning's automatic optimisation steps: each
    member's Adam (and learning-rate schedule) steps its own parameters, and only while it trains."""

    def __init__(self, members: list[Member]):
        self.members = members
        super().__init__([p for member in members for p in member.module.parameters()], {})

    def step(self, closure: Callable | None = None) -> object:
        loss = closure() if closure is not None else None  # forward, backward, each member's clipping
        for member in self.members:
            if member.training:
                member.optimizer.step()
                if member.scheduler is not None:
                    member.scheduler.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for member in self.members:
            member.optimizer.zero_grad(set_to_none)

    def state_dict(self) -> dict:
        """Each member's optimiser, and its schedule's state as its checkpoint keeps it (lr_schedulers)."""
        schedulers = [[] if m.scheduler is None else [m.scheduler.state_dict()] for m in self.members]
        return {"members": [member.optimizer.state_dict() for member in self.members], "schedulers": schedulers}

    def load_state_dict(self, state: dict) -> None:
        """Each member's optimiser and schedule, from state_dict's layout."""
        for member, member_state, schedule in zip(self.members, state["members"], state["schedulers"], strict=True):
            member.optimizer.load_state_dict(member_state)
            if member.scheduler is not None:
                member.scheduler.load_state_dict(schedule[0])


class StackedLM(L.LightningModule):
    """The members' networks as one stacked network: one loss per member, each checked by the member's
    guard; their sum is what backward sees (members share no parameter, so each gets its own gradient)."""

    def __init__(self, members: list[Member]):
        super().__init__()
        self.members = members
        self.networks = nn.ModuleList(member.module.model for member in members)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        """The training members' losses, computed for them alone: one that left costs nothing."""
        training = [index for index, member in enumerate(self.members) if member.training]
        members = [self.members[index] for index in training]
        inputs, targets = (part[training] for part in batch)
        networks, generators = [self.networks[index] for index in training], [member.generator for member in members]
        losses = member_losses(stacked_logits(networks, inputs, generators), targets)
        total = None
        for member, loss, value in zip(members, losses, losses.detach().tolist(), strict=True):
            member.module.step_loss = loss.detach()
            if self.passes(member, member.module.check_loss, value):
                total = loss if total is None else total + loss
        if total is None:
            self.trainer.should_stop = True  # every member has diverged
        return total

    def passes(self, member: Member, check: Callable, *args: object) -> bool:
        """Runs one of the member's guard checks; a member that fails it stops training here."""
        try:
            check(*args)
            return True
        except Diverged as err:
            member.ending = err  # its optimiser steps no more: its weights stay the last good ones
            member.call("on_exception", err)
            RunDir(member.run_dir).record_ending("diverged", str(err))
            return False

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, *args: object, **kwargs: object) -> None:
        """Each member's gradient norm, guard and clipping, with its own trainer.gradient_clip_val."""
        for member in self.members:
            if member.training:
                options = member.cfg.trainer
                clip = (member.optimizer, options.gradient_clip_val, options.get("gradient_clip_algorithm"))
                self.passes(member, member.module.configure_gradient_clipping, *clip)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        for member in self.members:
            if member.training:
                member.call("on_before_optimizer_step", member.optimizer)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        for member in self.members:
            chosen = member.module.configure_optimizers()
            if isinstance(chosen, dict):
                member.optimizer, member.scheduler = chosen["optimizer"], chosen["lr_scheduler"]["scheduler"]
            else:
                member.optimizer = chosen
        return MemberOptimizers(self.members)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        for member, state in zip(self.members, checkpoint["members"], strict=True):
            member.generator.set_state(state["torch_rng_state"])
            for callback in (member.best, member.last):
                callback.load_state_dict(state["callbacks"].get(callback.state_key, {}))


class MemberRecords(Callback):
    """Per step, each training member's metrics and spike forensics; its last.ckpt every
    checkpoint.every_n_steps; its validation, sample and best.ckpt every trainer.val_check_interval and at
    the last step: each at the step its solo run would write it."""

    def __init__(self, members: list[Member]):
        self.members = members

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for member in self.members:
            member.call("on_train_start")

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: object, batch: tuple, batch_idx: int
    ) -> None:
        for index, member in enumerate(self.members):
            if member.training:
                member.call("on_train_batch_end", outputs, tuple(part[index] for part in batch), batch_idx)
        step, first = trainer.global_step, self.members[0].cfg
        ending = [member for member in self.members if member.training and step >= member.length]
        if step % first.checkpoint.every_n_steps == 0 or ending:  # a member that ends is saved at its last step
            trainer.save_checkpoint(RunDir(Path(trainer.default_root_dir)).last, weights_only=False)
        for member in self.members:
            if member.training and (step % first.trainer.val_check_interval == 0 or member in ending):
                self.validate(trainer, member)
        for member in ending:
            member.done = True  # it leaves the stack

    def validate(self, trainer: L.Trainer, member: Member) -> None:
        """val/loss and val/bpc (with the memory's too) as the member's solo validation logs them, its
        sample, and best.ckpt when val/loss improved."""
        network = member.module.model
        with evaluating(network):
            scores = mean_loss(
                network, member.datamodule.val_ids, member.cfg.data.seq_len, memory=member.module.ngram_memory
            )
            member.call("on_validation_epoch_end")
        names = ("loss", "bpc", "loss_with_memory", "bpc_with_memory")
        metrics = {f"val/{name}": scores[name] for name in names if name in scores}
        member.logger.log_metrics(metrics | {"epoch": float(trainer.current_epoch)}, trainer.global_step - 1)
        member.val_losses = (scores["loss"], scores.get("loss_with_memory"))
        score = torch.tensor(scores["loss"])
        member.best.current_score = score
        if score < member.best_score():
            path = str(RunDir(member.run_dir).best)
            member.best.best_model_score = member.best.kth_value = score
            member.best.best_model_path = member.best.kth_best_model_path = path
            member.best.best_k_models = {path: score}
            trainer.save_checkpoint(path, weights_only=False)


class StackedCheckpointIO(AtomicCheckpointIO):
    """The stack's checkpoint is its members' checkpoints: saving the stack's last.ckpt writes each training
    member's last.ckpt, saving a member's best.ckpt writes that member's; loading the stack reads its
    members' last.ckpt files."""

    def __init__(self, members: list[Member]):
        super().__init__()
        self.members = members

    def save_checkpoint(self, checkpoint: dict, path: str | Path, storage_options: object = None) -> None:
        best_of = {str(RunDir(member.run_dir).best): member for member in self.members}
        if str(path) in best_of:
            targets = [(best_of[str(path)], Path(path))]
        else:
            targets = [(member, RunDir(member.run_dir).last) for member in self.members if member.training]
        for member, target in targets:
            if target.name == "last.ckpt":
                member.last.last_model_path = str(target)
            member.call("on_save_checkpoint", checkpoint)
            super().save_checkpoint(member_checkpoint(checkpoint, self.members.index(member), member), target)

    def load_checkpoint(self, path: str | Path, map_location: object = None, weights_only: bool | None = None) -> dict:
        saved = [read_checkpoint(RunDir(member.run_dir).last) for member in self.members]
        stacked = {key: saved[0][key] for key in PROGRESS}
        stacked["state_dict"] = {
            f"networks.{index}.{name.removeprefix(WEIGHTS_PREFIX)}": tensor
            for index, checkpoint in enumerate(saved)
            for name, tensor in checkpoint["state_dict"].items()
        }
        optimizers = [checkpoint["optimizer_states"][0] for checkpoint in saved]
        stacked["optimizer_states"] = [{"members": optimizers, "schedulers": [c["lr_schedulers"] for c in saved]}]
        stacked |= {"lr_schedulers": [], "callbacks": {}, "members": saved}
        return stacked


def member_checkpoint(stacked: dict, index: int, member: Member) -> dict:
    """Member `index`'s checkpoint out of the stack's: what its solo run saves at this step."""
    prefix = f"networks.{index}."
    checkpoint = {key: stacked[key] for key in PROGRESS}
    checkpoint["state_dict"] = {
        f"{WEIGHTS_PREFIX}{name.removeprefix(prefix)}": tensor
        for name, tensor in stacked["state_dict"].items()
        if name.startswith(prefix)
    }
    checkpoint["callbacks"] = {callback.state_key: callback.state_dict() for callback in (member.best, member.last)}
    optimizers = stacked["optimizer_states"][0]  # MemberOptimizers.state_dict: each member's Adam and schedule
    checkpoint["optimizer_states"] = [optimizers["members"][index]]
    checkpoint["lr_schedulers"] = optimizers["schedulers"][index]
    checkpoint["hparams_name"], checkpoint["hyper_parameters"] = "kwargs", dict(member.module.hparams)
    checkpoint["torch_rng_state"] = member.generator.get_state()
    return checkpoint


def build_member(cfg: DictConfig, run_dir: Path, ckpt_path: Path | None) -> Member:
    """A member as its solo run starts: its seeded data and module (lyricgen.training.fit.build_run), its
    dropout generator where the global RNG then stands, its TensorBoard logger with its config."""
    resume_step = start_of(cfg, run_dir, ckpt_path)
    datamodule, module = build_run(cfg, ckpt_path, run_dir)
    generator = torch.Generator()
    generator.set_state(torch.get_rng_state())
    logger = TensorBoardLogger(run_dir, name="", version="", default_hp_metric=False, purge_step=resume_step or None)
    logger.log_hyperparams(module.hparams_initial)
    log_run_config(logger, cfg)
    return Member(cfg, run_dir, module, datamodule, generator, logger)


def fit_stacked(runs: list[tuple[DictConfig, Path, Path | None]]) -> list[float | Diverged]:
    """Train the runs (config, run dir, checkpoint to continue or None) stacked; each one's best validation
    loss, or the Diverged that stopped it. Every run continues from the same step (0, or its last.ckpt's)."""
    first = runs[0][0]
    steps = {start_step(path) for _, _, path in runs}
    if len(steps) > 1:
        raise UserError(
            f"runs stacked together continue from one step, but their checkpoints are at steps {sorted(steps)}: "
            "continue them with resume=<run dir> each, or run the sweep without hydra/launcher=stacked"
        )
    if first.threads:
        torch.set_num_threads(first.threads)
    tune_process()
    members = [build_member(*run) for run in runs]
    trainer = stacked_trainer(first, members)
    for member in members:
        member.loop = MemberLoop(trainer, member)
        member.module.train_in(member.loop)
    module = StackedLM(members)
    step = steps.pop()
    windows = [member_windows(member, step) for member in members]
    loader = DataLoader(StackedWindows(windows), batch_size=None, generator=private_generator())
    trainer.fit(module, train_dataloaders=loader, ckpt_path=RunDir(members[0].run_dir).last if step else None)
    results = []
    for member in members:
        member.logger.save()
        if member.ending is not None:
            results.append(member.ending)
            continue
        steps = min(trainer.global_step, member.length)
        print_summary(member.module, member.run_dir, member.val_losses, steps, member.cfg)
        results.append(member.best_score())
    return results


def start_step(checkpoint: Path | None) -> int:
    """The step a run continues from: its checkpoint's, or 0."""
    return read_checkpoint(checkpoint)["global_step"] if checkpoint else 0


def member_windows(member: Member, step: int) -> RandomWindows:
    data = member.datamodule
    return RandomWindows(data.train_ids, data.batch_size, data.seq_len, data.seed, step)


def continue_line(members: list[Member]) -> str:
    """What a stopped stack says: how to continue it (its sweep's directory holds every member's)."""
    sweep = os.path.commonpath([member.run_dir.resolve() for member in members])
    return CONTINUE_STACK.format(sweep=sweep)


def stacked_trainer(cfg: DictConfig, members: list[Member]) -> L.Trainer:
    """The one Trainer of the stack: the shared options of its members' (logging interval, progress bar), as
    many steps as its longest member; no logger or checkpoint callback of its own, no validation loop (each
    member validates itself)."""
    options = trainer_options(cfg)
    kept = {key: options[key] for key in ("log_every_n_steps", "enable_progress_bar") if key in options}
    return L.Trainer(
        max_steps=max(member.length for member in members),
        default_root_dir=members[0].run_dir,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        accelerator="cpu",
        devices=1,
        callbacks=[MemberRecords(members), FinishAtLastStep(), CheckpointOnSignal(continue_line(members))],
        plugins=[StackedCheckpointIO(members)],
        **kept,
    )
