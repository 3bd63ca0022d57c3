"""A generic, pure state machine: which status may move to which, and what each status stamps.

Repositories and tests both read these tables; nothing else restates them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property


@dataclass(frozen=True)
class FieldRule:
    """A column that may hold a value only while the object is in one of `statuses`.

    Attributes:
        statuses: where the column may be set; entering any other status clears it.
        required: the column must be set in those statuses (e.g. a failed run's last error).
    """

    statuses: frozenset[str]
    required: bool = False


@dataclass(frozen=True)
class Machine:
    """The lifecycle of one kind of object.

    Attributes:
        kind: the object's name in error messages ("run", "run step", "message").
        initial: the status objects are created in.
        transitions: for each status, the statuses it may move to. A status without an entry
            is terminal (absorbing).
        stamps: for each status, the timestamp column set when an object enters it.
        keep_first: stamp columns that keep the time of the first entry (a run's started_at).
        fields: columns that only some statuses may hold (see FieldRule).
        verbs: for each verb of the repositories, the statuses it moves to and, for each, the
            statuses it moves from: every status write names its verb, and nothing else says
            which moves a verb may make.
        created_in: the statuses an object may be created in (by default the initial one).
        touches: columns set to the time of every move (a LangGraph run's updated_at).
    """

    kind: str
    initial: str
    transitions: Mapping[str, frozenset[str]]
    stamps: Mapping[str, str] = field(default_factory=dict)
    keep_first: frozenset[str] = frozenset()
    fields: Mapping[str, FieldRule] = field(default_factory=dict)
    verbs: Mapping[str, Mapping[str, frozenset[str]]] = field(default_factory=dict)
    created_in: frozenset[str] = frozenset()
    touches: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for verb, targets in self.verbs.items():
            for target, sources in targets.items():
                if not sources or not sources <= self.sources(target):
                    raise ValueError(f"{self.kind} verb {verb}: {sorted(sources)} -> {target} is not in the machine")
        if not self.created_in <= self.statuses:
            raise ValueError(f"{self.kind} objects cannot be created in {sorted(self.created_in - self.statuses)}")

    @cached_property
    def creatable(self) -> frozenset[str]:
        """The statuses an object may be created in."""
        return self.created_in or frozenset({self.initial})

    def verb_sources(self, verb: str, target: str) -> frozenset[str]:
        """The statuses from which `verb` moves to `target`.

        Raises:
            KeyError: the verb does not move to `target`.
        """
        return self.verbs[verb][target]

    @cached_property  # a machine never changes, and moves ask on every call
    def statuses(self) -> frozenset[str]:
        """Every status of the machine."""
        reachable = {target for targets in self.transitions.values() for target in targets}
        return frozenset({self.initial, *self.transitions, *reachable})

    @cached_property
    def terminal(self) -> frozenset[str]:
        """The statuses nothing leaves."""
        return frozenset(s for s in self.statuses if not self.transitions.get(s))

    @cached_property
    def active(self) -> frozenset[str]:
        """The statuses that are not terminal."""
        return self.statuses - self.terminal

    def allows(self, current: str, target: str) -> bool:
        """Whether `current` may move to `target`."""
        return target in self.transitions.get(current, frozenset())

    def sources(self, target: str) -> frozenset[str]:
        """The statuses from which `target` may be entered."""
        return frozenset(s for s, targets in self.transitions.items() if target in targets)

    def clears(self, target: str) -> tuple[str, ...]:
        """The columns that entering `target` sets to null: those `target` may not hold but a
        status that moves to it may."""
        sources = self.sources(target)
        return tuple(
            column for column, rule in self.fields.items() if target not in rule.statuses and rule.statuses & sources
        )
