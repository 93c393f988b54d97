"""Where a bench ran: the machine, its load and the code under test, for a run's first line.

Numbers from a shared 2-core machine mean little without these: a reader comparing two
runs needs to know which commit each measured, and whether uncommitted changes did too.
"""

import os
import subprocess
from pathlib import Path

from tests.servers import REPO_ROOT


def code_version() -> str:
    """The commit under test, and which tracked files differ from it (they are measured too)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise OSError(done.stderr.strip())
        return done.stdout

    try:
        commit = git("rev-parse", "--short", "HEAD").strip()
        changed = [
            line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
        ]
    except OSError:
        return "commit unknown (no git)"
    if not changed:
        return f"commit {commit}"
    return f"commit {commit} + uncommitted changes to {', '.join(changed)}"


def where(logs: Path) -> str:
    """The machine, its load, the code under test and the logs' place, for a run's first line."""
    return (
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; {code_version()}; "
        f"logs in {logs}"
    )
