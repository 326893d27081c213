"""Debian packages the project installs for itself, as root, when they are missing: MariaDB and
Redis (services), Chromium and a CJK font (the browser tests), nginx (the deployment), Redis
Sentinel. One way to do it; the callers say what is missing, and the command, when it cannot."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def debian_root() -> bool:
    """This is Debian or Ubuntu, we are root and apt-get is there: installing is ours to do."""
    return (Path("/etc/debian_version").exists() and os.geteuid() == 0
            and shutil.which("apt-get") is not None)


def debian_install(*packages: str, recommends: bool = False) -> bool:
    """`apt-get install -y` the packages (their recommended ones too only with `recommends`);
    if that fails, `apt-get update` and once more. True if it worked; False if it failed or this
    is not a Debian root (see debian_root)."""
    if not debian_root():
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q",
           *([] if recommends else ["--no-install-recommends"]), *packages]
    if subprocess.run(cmd, env=env, capture_output=True).returncode == 0:
        return True
    subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
    return subprocess.run(cmd, env=env, capture_output=True).returncode == 0
