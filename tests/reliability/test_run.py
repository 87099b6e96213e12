"""`make reliability`'s table names the engine it tested and what that engine guarantees (issue 21)."""

from __future__ import annotations

from tests.reliability.run import combine, engine_of, render


def test_the_embedded_default_table_states_what_holds_there_and_what_does_not() -> None:
    engine, rows = engine_of({})
    assert engine == "SQLite (embedded default), file-system broker"
    table = render(combine(rows), {"pytest tests/reliability": "passed"})
    assert "a killed worker's job ends failed by the reaper, never left running" in table
    assert "tested here (file-system broker)" in table
    assert "not given" in table


def test_the_server_table_names_postgresql_and_redis() -> None:
    engine, rows = engine_of({"DATABASE_URL": "postgres://u@h/db", "CELERY_BROKER_URL": "redis://h:6379/4"})
    assert engine == "PostgreSQL, Redis"
    assert all(row["value"].startswith(("tested", "PostgreSQL")) for row in rows)
