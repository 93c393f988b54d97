"""Headless Chromium for the browser tests: found on PATH, or installed with apt-get.

A browser test that cannot get a browser fails, naming what to install: skipping would
let GraphiQL break unseen on every machine without Chromium.
"""

import os
import shutil
import subprocess
import tempfile

import pytest

# No sandbox: tests run as root in containers, where Chromium's sandbox cannot start.
# Every host name but 127.0.0.1 fails to resolve: a page that needs the internet shows it.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--window-size=1280,900",
)
NAMES = ("chromium", "chromium-browser")


def _found() -> str | None:
    return next((path for name in NAMES if (path := shutil.which(name))), None)


def _apt_install() -> str:
    """Install Debian's `chromium`; what apt-get said, for the failure message."""
    apt = shutil.which("apt-get")
    if apt is None:
        return "apt-get is not available"
    if os.geteuid() != 0:
        return "apt-get needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "-q", "chromium"]
    done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        # A fresh machine may have no package lists yet.
        subprocess.run([apt, "update", "-q"], env=env, capture_output=True, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    return (done.stdout + done.stderr)[-2000:]


def chromium() -> str:
    """The Chromium binary, installed first if missing; the test fails without one."""
    found = _found()
    if found is None:
        said = _apt_install()
        found = _found()
        if found is None:
            pytest.fail(f"Chromium is needed, and not on PATH after apt-get install:\n{said}")
    return found


def dump_dom(binary: str, url: str, *, budget_ms: int = 15_000, timeout: float = 90.0) -> str:
    """The DOM of `url` once its scripts ran for `budget_ms` of virtual time, in a fresh
    profile (no state kept from another run)."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        done = subprocess.run(
            [
                binary,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--virtual-time-budget={budget_ms}",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
