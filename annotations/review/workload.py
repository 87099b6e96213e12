"""Automatic assignment of fields to annotators: each field needs two distinct people, and the work goes to those
with the fewest open assignments, taking turns (round robin) among equally loaded people.

Plain Python: the service reads the current loads from the database, calls `balance`, and writes the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

ANNOTATORS_PER_FIELD = 2


@dataclass(frozen=True)
class AnnotatorLoad:
    """An annotator's open assignments (own set not yet submitted) and when they were last given work:
    `last_assigned_rank` orders people by their most recent assignment (-1 = never assigned, larger = later)."""

    user_id: int
    open_assignments: int
    last_assigned_rank: int = -1


@dataclass(frozen=True)
class FieldNeed:
    """A field still short of annotators; `assigned` are those it already has (never chosen again)."""

    field_id: int
    assigned: frozenset[int] = field(default_factory=frozenset)

    @property
    def missing(self) -> int:
        return max(ANNOTATORS_PER_FIELD - len(self.assigned), 0)


class NotEnoughAnnotators(ValueError):
    def __init__(self, field_id: int, needed: int, available: int) -> None:
        super().__init__(f"field {field_id} needs {needed} more annotator(s) but only {available} can take it")
        self.field_id = field_id


def balance(loads: Sequence[AnnotatorLoad], needs: Sequence[FieldNeed]) -> dict[int, list[int]]:
    """Choose annotators for each field, in the order the fields are given: {field_id: [user_id, ...]}.

    Each choice takes the least loaded eligible person, then the one whose last assignment is the oldest, then
    the smaller user id; the choice counts as open work and as their latest assignment for later fields.
    Raises NotEnoughAnnotators when a field cannot get two distinct people.
    """
    state: dict[int, tuple[int, int]] = {
        load.user_id: (load.open_assignments, load.last_assigned_rank) for load in loads
    }
    next_rank = max((rank for _, rank in state.values()), default=-1) + 1
    chosen: dict[int, list[int]] = {}
    for need in needs:
        eligible = _by_priority(state, exclude=need.assigned)
        if len(eligible) < need.missing:
            raise NotEnoughAnnotators(need.field_id, need.missing, len(eligible))
        picks = eligible[: need.missing]
        for user_id in picks:
            open_assignments, _ = state[user_id]
            state[user_id] = (open_assignments + 1, next_rank)
            next_rank += 1
        chosen[need.field_id] = picks
    return chosen


def _by_priority(state: Mapping[int, tuple[int, int]], exclude: frozenset[int]) -> list[int]:
    return sorted((user_id for user_id in state if user_id not in exclude), key=lambda u: (*state[u], u))
