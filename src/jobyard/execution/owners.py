"""Who holds a job's lease: `host:pid`, and whether that process is gone."""

from __future__ import annotations

import os
import socket


def owner_id(pid: int | None = None) -> str:
    """This process's lease owner id."""
    return f"{socket.gethostname()}:{pid if pid is not None else os.getpid()}"


def is_dead_local_owner(owner: str | None) -> bool:
    """True only when `owner` is a process on this host that no longer exists.

    A redelivered message can then take over at once (a prefork child killed mid-job) instead
    of waiting for the lease to expire. Owners on other hosts are left to the reaper.
    """
    if not owner:
        return False
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
