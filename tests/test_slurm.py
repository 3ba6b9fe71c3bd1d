"""The SLURM path against a real one-node cluster (scripts/local_slurm.sh: slurmctld, slurmd, munged from
Debian's packages): -m sweeps through hydra/launcher=slurm with real sbatch and srun, preemption and time
limits as SLURM signals them (SIGUSR2, which submitit requeues on), DDP across two SLURM tasks, and a
diverging job among finishing ones. Skipped, with the reason, where Slurm or root is missing."""

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT, curve

from lyricgen.nn.checkpoints import read_checkpoint

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("slurmctld") is None or shutil.which("munged") is None,
        reason="Slurm is not installed (apt-get install slurmctld slurmd slurm-client munge; .ci/run does)",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="a throwaway SLURM cluster needs root (munged, slurmd)"),
]

CLUSTER = ROOT / "scripts" / "local_slurm.sh"
ON_THE_CLUSTER = [  # one CPU and a little memory per job: the cluster is this machine
    "hydra/launcher=slurm",
    "hydra.launcher.gpus_per_node=0",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
]
TINY = [  # seconds-long runs on the built-in corpus, one thread each
    "model=rnn",
    "model.hidden_size=16",
    "data.batch_size=4",
    "data.seq_len=32",
    "data.val_chars=2000",
    "threads=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "sample_length=20",
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a fresh cluster: SLURM_CONF, and PATH with the sacct stand-in first."""
    where = tmp_path_factory.mktemp("slurm") / "cluster"
    subprocess.run(["bash", str(CLUSTER), "start", str(where)], check=True, timeout=60)
    yield os.environ | {"SLURM_CONF": str(where / "slurm.conf"), "PATH": f"{where / 'bin'}:{os.environ['PATH']}"}
    subprocess.run(["bash", str(CLUSTER), "stop", str(where)], check=True, timeout=60)
    assert not where.exists()  # nothing left behind


def sweep(cluster: dict[str, str], cwd: Path, *overrides: str, **popen: object) -> subprocess.Popen:
    """`python -m lyricgen.train -m` with the SLURM launcher, started in the background."""
    command = [sys.executable, "-m", "lyricgen.train", "-m", *ON_THE_CLUSTER, *TINY, *overrides]
    command += [f"data.prepared_dir={cwd / 'prepared'}", f"hydra.sweep.dir={cwd / 'sweep'}"]
    return subprocess.Popen(command, cwd=cwd, env=cluster, stderr=subprocess.PIPE, text=True, **popen)


def finished(process: subprocess.Popen, timeout: float = 240) -> str:
    """The sweep's stderr once it has ended; it must end with status 0."""
    _, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-3000:]
    return stderr


def slurm(cluster: dict[str, str], *command: str) -> str:
    return subprocess.run(command, env=cluster, capture_output=True, text=True, check=True, timeout=30).stdout


def jobs(cluster: dict[str, str]) -> dict[str, str]:
    """{job id: state} of every job the cluster still knows, finished ones included."""
    lines = slurm(cluster, "squeue", "--noheader", "--states=all", "--format=%i %T").split("\n")
    return dict(line.split() for line in lines if line.strip())


def wait_for(condition: Callable[[], object], what: str, timeout: float = 120) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def running_with_a_checkpoint(cluster: dict[str, str], job: str, run_dir: Path, after_step: int = -1) -> bool:
    """The job runs and its run has saved a checkpoint past `after_step`."""
    last = run_dir / "checkpoints" / "last.ckpt"
    if jobs(cluster).get(job) != "RUNNING" or not last.is_file():
        return False
    try:
        return read_checkpoint(last)["global_step"] > after_step
    except Exception:  # caught between the write and the rename: look again
        return False


def completed(cluster: dict[str, str], ours: list[str]) -> None:
    """Wait until SLURM reports the jobs COMPLETED (a moment after their results were written)."""
    wait_for(lambda: all(jobs(cluster)[job] == "COMPLETED" for job in ours), "COMPLETED", timeout=30)


def restarts(cluster: dict[str, str], job: str) -> int:
    return int(re.search(r"Restarts=(\d+)", slurm(cluster, "scontrol", "show", "job", job))[1])


def submitted(sweep_dir: Path) -> list[str]:
    """The ids of a sweep's jobs, from submitit's folder: <id>_<index> for an array, <id> for a single job."""
    names = sorted(path.name for path in (sweep_dir / ".submitit").glob("[0-9]*") if path.is_dir())
    in_array = [name for name in names if "_" in name]  # an array also has a folder of its own id
    return in_array or names


def job_of(sweep_dir: Path, index: int | None = None) -> str:
    """The id of the sweep's `index`-th job (None: its only job), once submitted."""
    return wait_for(
        lambda: next((job for job in submitted(sweep_dir) if index is None or job.endswith(f"_{index}")), None),
        "the job's submission",
    )


def test_a_sweep_runs_each_job_in_its_own_run_dir_and_reports_a_diverging_one(cluster, tmp_path):
    stderr = finished(sweep(cluster, tmp_path, "optim.lr=0.002,0.003,1e9", "trainer.max_steps=30"))
    runs = {lr: tmp_path / "sweep" / f"optim.lr={lr}" for lr in ("0.002", "0.003", "1000000000.0")}
    for lr in ("0.002", "0.003"):
        assert (runs[lr] / "checkpoints" / "last.ckpt").is_file() and curve(runs[lr])
    assert f"error: {runs['1000000000.0']}: training diverged at step 1" in stderr  # the job's line, brought back
    assert f"sweep {tmp_path / 'sweep'}: 1 diverged, 2 finished" in stderr
    ours = submitted(tmp_path / "sweep")
    assert len(ours) == 3
    completed(cluster, ours)  # inf is a result: no job failed
    report = subprocess.run(
        [sys.executable, "-m", "lyricgen.report", f"dir={tmp_path / 'sweep'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert report.returncode == 0, report.stderr[-2000:]
    text = (tmp_path / "sweep" / "report.md").read_text()
    assert "optim.lr=0.002" in text and "optim.lr=0.003" in text


def saved_and_continued(run_dir: Path, job: str) -> tuple[int, int]:
    """(the step the signalled job saved at, the step its requeued run continued from), from its log."""
    log = (run_dir / ".submitit" / job / f"{job}_0_log.err").read_text()
    saved = re.search(r"note: stopped by SIGUSR2 after step (\d+): saved", log)
    continued = re.search(r"already holds this run: continuing it from its last checkpoint \(step (\d+)\)", log)
    return int(saved[1]), int(continued[1])


def test_a_preempted_job_is_requeued_and_continues_bit_for_bit(cluster, tmp_path):
    steps = ["trainer.max_steps=5000", "checkpoint.every_n_steps=50", "trainer.val_check_interval=2500"]
    reference = subprocess.Popen(  # the same run, uninterrupted, beside the cluster
        [sys.executable, "-m", "lyricgen.train", *TINY, *steps, f"hydra.run.dir={tmp_path / 'reference'}"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    process = sweep(cluster, tmp_path, *steps, "hydra.launcher.timeout_min=60")  # long: a preemption, no timeout
    run_dir = tmp_path / "sweep"  # a sweep of one job runs in the sweep's own directory
    job = job_of(run_dir)
    wait_for(lambda: running_with_a_checkpoint(cluster, job, run_dir), "the job's first checkpoint")
    slurm(cluster, "scancel", "--signal=USR2", job)  # what SLURM sends a preempted job (preempt_send_user_signal)
    finished(process)
    completed(cluster, [job])
    assert restarts(cluster, job) == 1
    saved, continued = saved_and_continued(run_dir, job)
    assert 50 <= saved == continued  # from the step the signal came at, not the last periodic checkpoint
    assert reference.wait(timeout=120) == 0
    requeued, uninterrupted = dict(curve(run_dir)), dict(curve(tmp_path / "reference"))
    assert sorted(requeued) == list(range(5000)) and requeued == uninterrupted  # every step, bit for bit


def test_time_limits_requeue_a_job_up_to_max_num_timeout_then_end_it_in_one_line(cluster, tmp_path):
    # With timeout_min under 10, submitit counts every SIGUSR2 as the time limit's (SLURM sends it
    # signal_delay_s before the limit): signalled here, so the test does not wait for the clock.
    limits = ["hydra.launcher.timeout_min=5", "hydra.launcher.max_num_timeout=1", "checkpoint.every_n_steps=50"]
    process = sweep(cluster, tmp_path, *limits, "trainer.max_steps=8000,1000000", "trainer.val_check_interval=4000")
    sweep_dir = tmp_path / "sweep"
    short, long = sweep_dir / "trainer.max_steps=8000", sweep_dir / "trainer.max_steps=1000000"
    short_job, long_job = job_of(sweep_dir, 0), job_of(sweep_dir, 1)
    for job, run_dir in ((short_job, short), (long_job, long)):
        wait_for(lambda: running_with_a_checkpoint(cluster, job, run_dir), "a first checkpoint")  # noqa: B023
        slurm(cluster, "scancel", "--signal=USR2", job)
    wait_for(lambda: restarts(cluster, long_job) == 1, "the long job's requeue")
    first_stop = read_checkpoint(long / "checkpoints" / "last.ckpt")["global_step"]  # saved at the signal
    wait_for(lambda: running_with_a_checkpoint(cluster, long_job, long, first_stop), "the requeued long job")
    slurm(cluster, "scancel", "--signal=USR2", long_job)  # its second time limit: no requeue left
    stderr = finished(process)
    assert restarts(cluster, short_job) == 1 and (short / "checkpoints" / "last.ckpt").is_file()
    kept = read_checkpoint(long / "checkpoints" / "last.ckpt")["global_step"]  # the checkpoint is kept
    assert first_stop < kept < 1_000_000
    line = f"error: {long}: stopped by SIGUSR2 after step {kept}: saved {long / 'checkpoints' / 'last.ckpt'}; "
    assert line + "Job not requeued because: timed-out too many times." in stderr
    assert f"sweep {sweep_dir}: 1 finished, 1 not requeued" in stderr


def test_ddp_across_two_slurm_tasks_trains_validates_and_writes_once(cluster, tmp_path):
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true"]
    tasks = ["hydra.launcher.tasks_per_node=2", "trainer.max_steps=20", "trainer.val_check_interval=10"]
    finished(sweep(cluster, tmp_path, *ddp, *tasks))
    run_dir = tmp_path / "sweep"
    (job,) = submitted(run_dir)
    for rank in (0, 1):  # one process per SLURM task, joined by Lightning's SLURM environment: no spawning
        log = (run_dir / ".submitit" / job / f"{job}_{rank}_log.err").read_text()
        assert f"GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/2" in log and "ddp_spawn" not in log
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1  # rank 0 logs; the other rank writes nothing
    assert len(curve(run_dir, "val/loss")) == 2  # validated at steps 10 and 20, the ranks' losses averaged
    assert read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 20
