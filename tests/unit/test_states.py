"""The transition table, walked."""

from __future__ import annotations

import itertools

from jobyard.domain.states import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    JobState,
    is_allowed,
)


def test_every_pair_is_decided_by_the_table() -> None:
    for source, target in itertools.product(JobState, JobState):
        assert is_allowed(source, target) == ((source, target) in TRANSITIONS)


def test_succeeded_is_final_and_everything_can_be_cancelled_while_active() -> None:
    assert not any(source is JobState.SUCCEEDED for source, _ in TRANSITIONS)
    for state in ACTIVE_STATES:
        assert is_allowed(state, JobState.CANCELLED)
    for state in TERMINAL_STATES - {JobState.SUCCEEDED}:
        assert {target for source, target in TRANSITIONS if source is state} == {JobState.QUEUED}


def test_every_state_is_reachable_from_queued() -> None:
    reached, frontier = {JobState.QUEUED}, [JobState.QUEUED]
    while frontier:
        state = frontier.pop()
        for source, target in TRANSITIONS:
            if source is state and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(JobState)


def test_values_are_lowercase_database_values() -> None:
    assert [s.value for s in JobState] == [s.name.lower() for s in JobState]
