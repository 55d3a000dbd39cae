"""Roles of API keys, ordered: each role may do what the roles below it may."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a key may do: read (`viewer`), run jobs (`operator`), administer (`admin`)."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Position in the order viewer < operator < admin."""
        return list(Role).index(self)

    def allows(self, required: Role) -> bool:
        """Whether this role may do what `required` may."""
        return self.rank >= required.rank
