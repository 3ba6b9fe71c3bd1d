"""Which results files no longer describe the code: measured at a commit older than the last change to the
code they measure (the paths their provenance names), measured with uncommitted changes to it, or carrying
no provenance at all.

Run: `make stale` or `python benchmarks/stale.py [FILE ...]` (no files: every results file of the
repository). One line per stale file, and exit status 1 when there is any; nothing, and 0, when every
figure is current.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# where results files live; a protocol's groups.csv has its provenance.json beside it
RESULTS = ("benchmarks/results/*.json", "docs/**/*.json", "docs/**/groups*.csv")


def git(*args: str, root: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False).stdout.strip()


def protocol_parts(data: dict) -> list[dict]:
    """Each group's record (commit, dirty) of a protocol continued across commits; other results files use
    "groups" for the groups they ran (a name or a list), which carry no record of their own."""
    groups = data.get("groups")
    return list(groups.values()) if isinstance(groups, dict) else []


def commits_of(data: dict) -> list[str]:
    """The commits a results file was measured at: its own, and each part's (a protocol's groups)."""
    parts = protocol_parts(data)
    return list(dict.fromkeys([data["provenance"]["commit"], *(part["commit"] for part in parts)]))


def why_stale(path: Path, root: Path = ROOT) -> str | None:
    """Why the figures of `path` may not hold at HEAD, or None when they do."""
    if path.suffix == ".csv":
        path = path.with_name("provenance.json")
        if not path.is_file():
            return "no provenance: the commit that measured it is unknown"
    data = json.loads(path.read_text())
    record = data.get("provenance") if isinstance(data, dict) else None
    if record is None:
        return "no provenance: the commit that measured it is unknown"
    dirty = record["dirty"] + [line for part in protocol_parts(data) for line in part.get("dirty", [])]
    if dirty:
        return f"measured with uncommitted changes ({'; '.join(dirty[:3])})"
    for commit in commits_of(data):
        if git("cat-file", "-t", commit, root=root) != "commit":
            return f"measured at {commit[:7]}, a commit this checkout does not have"
        later = git("log", "--format=%h", f"{commit}..HEAD", "--", *record["measures"], root=root).split()
        if later:
            return (
                f"measured at {commit[:7]}; {len(later)} later commits change the code it measures (newest {later[0]})"
            )
    return None


def results_files(root: Path = ROOT) -> list[Path]:
    found = {path for pattern in RESULTS for path in root.glob(pattern)}
    return sorted(
        path for path in found if not (path.name == "provenance.json" and path.with_name("groups.csv") in found)
    )


def main(paths: list[str]) -> int:
    files = [Path(path).resolve() for path in paths] or results_files()
    stale = [(path, reason) for path in files if (reason := why_stale(path))]
    for path, reason in stale:
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {reason}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
