"""`hydra/launcher=stacked`: a -m sweep's jobs of one shape train stacked, several in one process
(lyricgen.training.stacked), each still its own run in its own directory; the rest run one by one as the
basic launcher runs them. `python -m lyricgen.train -m hydra/launcher=stacked seed=0,1,2,3,4
experiment=paper_baseline` trains the five seeds as one stack.

Jobs stack when their networks have the same shape (a CharRNN of any cell on one-hot input,
unconditioned: what lyricgen.nn.stacked computes) and they share batch and window size, validation and
checkpoint intervals, logging interval and threads; they may differ in everything else a sweep varies:
seed, length (a member that reaches its last step leaves the stack, the others go on), optimiser (one of
PyTorch's that conf/optim/ offers; another runs alone), its settings and schedule, dropout, clipping, guard,
corpus, memory. A shape's jobs are split into stacks of at most `max_members`, of even sizes, longest jobs
together; `n_jobs` stacks (or unstackable jobs) run at a time, each in a process of its own, the most work
first. A job that cannot stack runs alone, as do jobs whose batches are larger than their cell's
`max_batch_size`, where stacking stops paying (benchmarks/results/stacked.md). With `hydra/sweeper=listed`
a sweep's jobs are any list of runs (lyricgen.hydra.sweeps), so unlike runs of one shape stack too.
"""

import json
import math
import multiprocessing
import sys
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from lyricgen import Diverged, UserError, one_line_errors
from lyricgen.config import CHARRNN, OPTIMISERS
from lyricgen.rundir import RunDir
from lyricgen.training.run import finish_run, prepare_run

# trainer options a stack runs with (the rest of a job's trainer config makes it run alone)
STACKED_TRAINER = {
    "accelerator": ("cpu", "auto"),
    "devices": (1, "auto"),
    "precision": ("32-true", "32", 32),
}
SHARED_TRAINER = ("val_check_interval", "log_every_n_steps", "enable_progress_bar")
PER_MEMBER_TRAINER = ("max_steps", "gradient_clip_val", "gradient_clip_algorithm")
IGNORED_TRAINER = ("check_val_every_n_epoch", "num_sanity_val_steps", "enable_model_summary")
PER_MEMBER_MODEL = ("dropout",)


def stack_key(cfg: DictConfig, max_batch_size: Mapping[str, int]) -> tuple | None:
    """What jobs must share to stack (None: this job runs alone). max_batch_size: the largest batch that
    stacks, by cell."""
    model, trainer = OmegaConf.to_container(cfg.model, resolve=True), OmegaConf.to_container(cfg.trainer, resolve=True)
    network = (
        model.get("_target_") == CHARRNN
        and model.get("input") == "onehot"
        and not model.get("condition")
        and not model.get("input_dropout")
    )
    plain = not (cfg.resume or cfg.ckpt_path or cfg.init_from or cfg.callbacks or cfg.logger.get("extra"))
    penalised = cfg.optim.get("activation_reg") or cfg.optim.get("temporal_activation_reg")
    optim = cfg.optim.get("_target_") in OPTIMISERS and not penalised  # PyTorch's own optimisers, as conf/optim/'s
    options = all(trainer.get(key, allowed[0]) in allowed for key, allowed in STACKED_TRAINER.items())
    known = set(STACKED_TRAINER) | set(SHARED_TRAINER) | set(PER_MEMBER_TRAINER) | set(IGNORED_TRAINER)
    largest_batch = max_batch_size.get(model.get("cell"), 0)
    if not (network and plain and optim and options and set(trainer) <= known) or cfg.data.batch_size > largest_batch:
        return None
    shape = tuple(sorted((key, str(value)) for key, value in model.items() if key not in PER_MEMBER_MODEL))
    shared = tuple(str(trainer.get(key)) for key in SHARED_TRAINER)
    return shape, shared, cfg.data.batch_size, cfg.data.seq_len, cfg.checkpoint.every_n_steps, cfg.threads


def plan(configs: Sequence[DictConfig], max_members: int, max_batch_size: Mapping[str, int]) -> list[list[int]]:
    """The jobs (indices) grouped: each stackable shape's jobs, longest first, in the fewest stacks of at
    most max_members, of even sizes (a stack of 8 and one of 2 would waste what stacking saves); each
    other job alone. Shapes in the order the sweep first names them."""
    shapes: dict[tuple, list[int]] = {}
    batches: list[list[int] | tuple] = []
    for index, cfg in enumerate(configs):
        key = stack_key(cfg, max_batch_size)
        if key is None:
            batches.append([index])
        elif key not in shapes:
            shapes[key] = [index]
            batches.append(key)
        else:
            shapes[key].append(index)
    planned = []
    for batch in batches:
        if isinstance(batch, list):
            planned.append(batch)
            continue
        jobs = sorted(shapes[batch], key=lambda index: -configs[index].trainer.max_steps)
        stacks = -(-len(jobs) // max_members)
        planned += [jobs[len(jobs) * stack // stacks : len(jobs) * (stack + 1) // stacks] for stack in range(stacks)]
    return planned


def work(cfg: DictConfig) -> float:
    """A job's training work, roughly: steps x layers x recurrent matmuls (the order in which stacks start)."""
    gates = {"gru": 3, "lstm": 4}.get(cfg.model.get("cell"), 1)
    return cfg.trainer.max_steps * cfg.model.get("num_layers", 1) * gates * cfg.model.get("hidden_size", 1) ** 2


class StackedLauncher(Launcher):
    def __init__(self, max_members: int = 8, n_jobs: int = 1, max_batch_size: Mapping[str, int] | None = None) -> None:
        if max_members < 1 or n_jobs < 1:
            raise UserError("hydra.launcher.max_members and hydra.launcher.n_jobs must be at least 1")
        if not isinstance(max_batch_size, Mapping | None):
            raise UserError("hydra.launcher.max_batch_size is set per cell: e.g. hydra.launcher.max_batch_size.rnn=4")
        self.max_members, self.n_jobs = max_members, n_jobs
        self.max_batch_size = dict(max_batch_size or {})
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        configs = [self.job_config(initial_job_idx + index, list(item)) for index, item in enumerate(job_overrides)]
        batches = plan(configs, self.max_members, self.max_batch_size)
        # the most work first: with n_jobs processes, the last to start are the shortest
        batches.sort(key=lambda batch: -sum(work(configs[index]) for index in batch))
        for batch in batches:
            kind = f"{len(batch)} stacked" if len(batch) > 1 else "alone"
            jobs = "; ".join(" ".join(filter_overrides(job_overrides[index])) for index in batch)
            print(f"[stacked launcher] {kind}: {jobs}", file=sys.stderr)
        runs = [lambda batch=batch: self.run_batch(configs, batch) for batch in batches]
        returns: dict[int, JobReturn] = {}
        for batch, results in zip(batches, in_processes(runs, self.n_jobs), strict=True):
            returns |= dict(zip(batch, results, strict=True))
        return [returns[index] for index in range(len(configs))]

    def job_config(self, index: int, overrides: list[str]) -> DictConfig:
        config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(config):
            config.hydra.job.id = config.hydra.job.num = index
        return config

    def job(self, config: DictConfig, task: Callable) -> JobReturn:
        return run_job(
            hydra_context=self.hydra_context,
            task_function=task,
            config=config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )

    def run_batch(self, configs: Sequence[DictConfig], batch: list[int]) -> list[JobReturn]:
        """One job alone, as the basic launcher runs it, or a group trained stacked."""
        if len(batch) == 1:
            return [self.job(configs[batch[0]], self.task_function)]
        prepared = [self.job(configs[index], one_line_errors(prepare_run)) for index in batch]
        training = [ret for ret in prepared if ret.status == JobStatus.COMPLETED and not has_diverged(ret)]
        for ret in prepared:
            if ret in training:
                continue
            if ret.status == JobStatus.COMPLETED:  # diverged in an earlier launch: its result stands
                ret.return_value = math.inf
        if training:
            from lyricgen.training.stacked import (
                fit_stacked,
                start_step,
            )  # torch and Lightning: once the jobs are sound

            # members continue from one step: a stack stopped midway whose members were planned otherwise
            # this time (some have ended since) trains as one stack per step its members stopped at
            by_step: dict[int, list[JobReturn]] = {}
            for ret in training:
                by_step.setdefault(start_step(ret.return_value[2]), []).append(ret)
            for same_step in by_step.values():
                results = one_line_errors(fit_stacked)([ret.return_value for ret in same_step])
                for ret, result in zip(same_step, results, strict=True):
                    ret.return_value = finished(ret, result)
        return prepared


def has_diverged(ret: JobReturn) -> bool:
    status = RunDir(ret.return_value[1]).status
    return status.is_file() and json.loads(status.read_text()).get("state") == "diverged"


def finished(ret: JobReturn, result: float | Diverged) -> float:
    """The job's result as its solo run ends: its status.json, and what the sweeper gets."""
    HydraConfig.instance().set_config(ret.hydra_cfg)
    if isinstance(result, Diverged):  # the stack recorded it when it happened
        print(f"error: {result}", file=sys.stderr)
        return math.inf
    return finish_run(ret.return_value[1], result)


def in_processes(runs: list[Callable[[], list[JobReturn]]], n_jobs: int) -> list[list[JobReturn]]:
    """Each run's results, `n_jobs` runs at a time, each in a forked process of its own (one at a time: in
    this process). Forked, so a run is handed over as it is (only its results are pickled); this process
    has not started torch's threads."""
    if n_jobs == 1 or len(runs) == 1:
        return [run() for run in runs]
    fork = multiprocessing.get_context("fork")
    results: dict[int, list[JobReturn] | int] = {}
    running: dict[Connection, tuple[int, BaseProcess]] = {}
    waiting = list(enumerate(runs))
    while waiting or running:
        while waiting and len(running) < n_jobs:
            index, run = waiting.pop(0)
            receiving, sending = fork.Pipe(duplex=False)
            process = fork.Process(target=send_results, args=(run, sending))
            process.start()
            sending.close()
            running[receiving] = (index, process)
        for receiving in wait(list(running)):
            index, process = running.pop(receiving)
            try:
                results[index] = receiving.recv()
            except EOFError:  # the process died without a word (killed): the sweep stops with its exit code
                results[index] = 1
            process.join()
            if process.exitcode and process.exitcode < 0:  # a signal: 128 + its number, as a shell says it
                results[index] = 128 - process.exitcode
    for result in results.values():
        if isinstance(result, int):  # a job's one-line error (already printed): the sweep stops, as without -m
            sys.exit(result)
    return [results[index] for index in range(len(runs))]


def send_results(run: Callable[[], list[JobReturn]], connection: Connection) -> None:
    """A forked process's run: its results, or the exit code of a job that stopped with a one-line error."""
    try:
        connection.send(run())
    except SystemExit as exit_:
        connection.send(exit_.code if isinstance(exit_.code, int) else 1)
