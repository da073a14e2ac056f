"""Shared runtime for every Smart110 service.

Server bootstrap, configuration, database engine and unit of work, the
transactional outbox and its event feed, feed consumers, error mapping,
idempotency, auth context and telemetry. No domain logic lives here.
"""
