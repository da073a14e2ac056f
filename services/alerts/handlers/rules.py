"""Rule use cases: create, change and delete rules (every change a new version), the standing
rules a new installation starts with, and the cache of the rules in force."""
from __future__ import annotations

import threading
import uuid

from services.runtime.uow import UnitOfWork

from ..domain import Rule, RuleSet


def create_rule(uow: UnitOfWork, *, rule: Rule, rule_id: str | None = None, reason: str = "") -> Rule:
    created = rule.created(rule_id=rule_id or f"r-{uuid.uuid4().hex[:12]}", actor=uow.actor, now=uow.now(),
                           reason=reason)
    uow.repos.rules.add(created)
    return uow.repos.rules.get(created.id, lock=False)


def update_rule(uow: UnitOfWork, *, rule_id: str, patch: Rule, paths: list[str], expected_version: int,
                reason: str) -> Rule:
    """The fields in `paths` taken from `patch`, as the rule's next version."""
    current = uow.repos.rules.get(rule_id)
    revised = current.revised(patch, paths, expected_version=expected_version, actor=uow.actor, now=uow.now(),
                              reason=reason)
    uow.repos.rules.add_version(revised)
    return uow.repos.rules.get(rule_id, lock=False)


def delete_rule(uow: UnitOfWork, *, rule_id: str, reason: str) -> Rule:
    deleted = uow.repos.rules.get(rule_id).deleted(actor=uow.actor, now=uow.now(), reason=reason)
    uow.repos.rules.add_version(deleted)
    return uow.repos.rules.get(rule_id, lock=False)


def add_standing_rules(uow: UnitOfWork, standing: dict[str, Rule]) -> list[str]:
    """Creates the standing rules not there yet (under their own ids); returns the ids created."""
    have = uow.repos.rules.ids()
    created = []
    for rule_id, rule in standing.items():
        if rule_id not in have:
            create_rule(uow, rule=rule, rule_id=rule_id, reason="初始规则")
            created.append(rule_id)
    return created


class RulesCache:
    """The rules in force and their keyword automaton, rebuilt only when a rule changed
    (every replica sees every change at its next event: the revision is read each time)."""

    def __init__(self):
        self._revision = None
        self._rules = RuleSet([])
        self._lock = threading.Lock()

    def current(self, repos) -> RuleSet:
        revision = repos.rules.revision()
        with self._lock:
            if revision != self._revision:
                self._rules = RuleSet(repos.rules.active())
                self._revision = revision
            return self._rules

    def last(self) -> RuleSet:
        """The rules as last read (no read now): for the steps before a transaction."""
        with self._lock:
            return self._rules
