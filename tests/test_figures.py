"""Figures come from results files that say which code measured them: the README's table is written from
them (a hand-edited figure fails), and the staleness check names results the code has moved past."""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from figures import ROOT, commit, markers
from stale import results_files, why_stale

from lyricgen.provenance import INSTRUCTION_SETS, provenance


def figures_check(*files: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "benchmarks" / "figures.py"), "--check", *map(str, files)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_the_written_sections_are_what_the_results_files_say():
    result = figures_check()  # README's table and song, docs/reproduce.md's and docs/measurements.md's sections
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_hand_edited_figure_fails_the_check(tmp_path):
    readme = (ROOT / "README.md").read_text()
    start, end = markers("figures")
    table = readme.split(start, 1)[1].split(end, 1)[0]
    row = next(line for line in table.splitlines() if "make train" in line)
    edited = row.replace(" bits/char", "1 bits/char", 1)  # one digit more in the first figure
    (tmp_path / "README.md").write_text(readme.replace(row, edited))
    result = figures_check(tmp_path / "README.md")
    assert result.returncode == 1 and edited in result.stdout and "make figures" in result.stdout


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A git repository with a measured module (code/model.py) and an unmeasured one (notes.py)."""
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / "code").mkdir()
    for name in ("code/model.py", "notes.py"):
        (tmp_path / name).write_text("x = 1\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "first")
    return tmp_path


def results_at(repo: Path, **changes: object) -> Path:
    record = provenance(["code"]) | {"commit": git(repo, "rev-parse", "HEAD"), "dirty": []} | changes
    path = repo / "results.json"
    path.write_text(json.dumps({"provenance": record, "figure": 1.0}))
    return path


def commit_change(repo: Path, name: str) -> None:
    (repo / name).write_text("x = 2\n")
    git(repo, "commit", "-qam", f"change {name}")


def test_results_go_stale_when_the_code_they_measure_changes(repo):
    results = results_at(repo)
    assert why_stale(results, repo) is None
    commit_change(repo, "notes.py")  # code the figure does not measure
    assert why_stale(results, repo) is None
    commit_change(repo, "code/model.py")
    newest = git(repo, "log", "-1", "--format=%h")
    assert why_stale(results, repo) == (
        f"measured at {json.loads(results.read_text())['provenance']['commit'][:7]}; 1 later commits change the code "
        f"it measures (newest {newest})"
    )


def test_results_without_provenance_or_from_uncommitted_code_are_stale(repo):
    dirty = results_at(repo, dirty=[" M code/model.py"])
    assert why_stale(dirty, repo) == "measured with uncommitted changes ( M code/model.py)"
    (repo / "old.json").write_text(json.dumps({"figure": 1.0}))
    assert why_stale(repo / "old.json", repo) == "no provenance: the commit that measured it is unknown"
    foreign = results_at(repo, commit="0" * 40)
    assert why_stale(foreign, repo) == "measured at 0000000, a commit this checkout does not have"


def test_a_protocol_continued_across_commits_is_judged_by_its_oldest_group(repo):
    first = git(repo, "rev-parse", "HEAD")
    commit_change(repo, "code/model.py")
    results = results_at(repo)
    assert why_stale(results, repo) is None
    data = json.loads(results.read_text()) | {"groups": {"baseline": {"commit": first, "dirty": []}}}
    results.write_text(json.dumps(data))
    assert why_stale(results, repo).startswith(f"measured at {first[:7]}; 1 later commits")


def test_the_staleness_check_and_the_figures_read_every_results_file_of_the_repository():
    for path in results_files():  # each with its own shape: a protocol's groups, a comparison's group list, ...
        reason = why_stale(path)
        assert reason is None or reason.startswith(("measured at", "measured with", "no provenance")), (path, reason)
        if path.suffix == ".json":
            assert re.fullmatch(r"unknown|`[0-9a-f]{7}`(, `[0-9a-f]{7}`)*", commit(json.loads(path.read_text()))), path


def test_provenance_names_the_machine_and_the_command():
    record = provenance(["lyricgen/nn"])
    assert len(record["commit"]) == 40 and record["cores"] >= 1 and record["cpu"]
    assert record["command"].startswith("python ") and record["torch"] and record["measures"] == ["lyricgen/nn"]
    assert set(record["instruction_sets"]) <= set(INSTRUCTION_SETS)


def test_a_claims_verdict_flips_when_its_numbers_do(tmp_path):
    """The paper's claims are read from the protocol's groups by stated rules: the best model moved above the
    baseline turns "best is best" from confirmed to refuted on the page."""
    from paper_claims import claims_table

    folder = ROOT / "docs" / "reproduce-full"
    assert "is best | clean, 20k | **confirmed**" in claims_table(folder)
    for name in ("groups.csv", "results.csv"):
        (tmp_path / name).write_text((folder / name).read_text())
    rows = list(csv.DictReader((tmp_path / "groups.csv").open()))
    best = next(row for row in rows if row["group"] == "best")
    best["val_loss_mean"] = str(float(next(r for r in rows if r["group"] == "baseline")["val_loss_mean"]) + 0.1)
    with (tmp_path / "groups.csv").open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert "is best | clean, 20k | **refuted**" in claims_table(tmp_path)
