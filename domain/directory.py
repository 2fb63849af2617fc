"""A chat platform's org directory as neutral values: what a directory sync applies."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DirectoryDepartment:
    """A department: it becomes (or updates) the team keyed ``<platform>-<id>``."""

    id: int
    name: str


@dataclass(frozen=True)
class DirectoryUser:
    """A person in the directory; ``department_id`` None keeps the member's team as it is."""

    userid: str
    name: str
    department_id: int | None
    active: bool
