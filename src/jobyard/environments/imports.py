"""Saying which pool has a library that a job module imports at module level."""

from __future__ import annotations

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from jobyard.config import Settings


def pools_with(settings: Settings, module: str) -> list[str]:
    """Pools whose requirements file names a distribution called like the top-level module."""
    wanted = canonicalize_name(module.split(".")[0])
    found = []
    for name, pool in settings.pools.items():
        if pool.requirements and wanted in _names(settings, pool.requirements):
            found.append(name)
    return found


def _names(settings: Settings, requirements: str) -> set[str]:
    try:
        lines = settings.resolve_path(requirements).read_text(encoding="utf-8").splitlines()
    except OSError:
        return set()
    names: set[str] = set()
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("-"):
            continue
        try:
            names.add(canonicalize_name(Requirement(text).name))
        except InvalidRequirement:
            continue
    return names


def missing_library_message(settings: Settings, module: str, missing: str) -> str:
    """One line: the job module, the library it lacks here, and the pool that has it."""
    pools = pools_with(settings, missing)
    if pools:
        where = ", ".join(f"'{p}' ({settings.pools[p].requirements})" for p in pools)
        noun = "pool" if len(pools) == 1 else "pools"
        return (
            f"job module '{module}' imports '{missing}' at module level, but '{missing}' is "
            f"only in the environment of {noun} {where}: import it inside the job function, so "
            "web, the scheduler and the other pools never need it"
        )
    return (
        f"job module '{module}' imports '{missing}', which is not installed here and no pool's "
        f"requirements name it: install it, or add it to the requirements of the pool that "
        "runs the job and import it inside the job function"
    )
