"""Bulk writes in one SQL statement whatever the number of rows: the rows travel as one JSON parameter.

Django's `bulk_create`/`bulk_update` prepare every value of every row in Python and split the rows into batches
(SQLite: 999 parameters a statement), so a pre-label chunk of 128 fields x 20 cells made dozens of statements and
spent most of its time preparing values. Here the rows are serialised once (C json encoder) and the database
unpacks them (SQLite `json_each`, PostgreSQL `json_populate_recordset`): one statement, constant in the row count.

Values must be what the column stores: numbers, booleans, strings, None, dicts/lists for JSON columns, and
datetimes already in the database's form (`db_datetime`). Fields the rows do not name get their model default,
`auto_now`/`auto_now_add` fields the current time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import connection, models
from django.utils import timezone


def db_datetime(field: models.Field[Any, Any], when: datetime) -> Any:
    """`when` as `field` stores it, as a JSON value (SQLite: its text form; PostgreSQL: ISO 8601)."""
    value = field.get_db_prep_save(when, connection)
    return value if isinstance(value, str) else value.isoformat()


def _column(field: Any) -> str:
    column: str = field.column
    return column


def _columns(model: type[models.Model], given: set[str]) -> tuple[list[str], dict[str, Any]]:
    """The columns to write (every concrete field but the auto primary key) and the values of those the rows do
    not give (attribute names `given`), shared by all rows."""
    now = timezone.now()
    shared: dict[str, Any] = {}
    columns = []
    for field in model._meta.concrete_fields:
        if field.primary_key and isinstance(field, models.AutoField | models.BigAutoField):
            continue
        column = _column(field)
        columns.append(column)
        if field.attname in given:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            shared[column] = db_datetime(field, now)
        elif field.has_default():
            if callable(field.default) and field.default not in (dict, list):
                # A per-row default (a uuid, a counter) cannot be one shared value: the caller names it.
                raise ValueError(f"{model.__name__}.{field.name} has a per-row default; give it in the rows")
            shared[column] = field.get_default()
        else:
            shared[column] = None
    return columns, shared


def _payload(model: type[models.Model], rows: Sequence[Mapping[str, Any]], shared: dict[str, Any]) -> str:
    by_column = {field.attname: _column(field) for field in model._meta.concrete_fields}
    return json.dumps([{**shared, **{by_column[k]: v for k, v in row.items()}} for row in rows], allow_nan=False)


def _from_json(table: str) -> tuple[str, Any]:
    """(FROM clause unpacking the JSON parameter into rows `r`, the SQL expression of column `c` of a row, given
    whether `c` is a JSON column), per database."""
    if connection.vendor == "postgresql":
        return f"json_populate_recordset(NULL::{table}, %s::json) AS r", lambda c, _is_json: f"r.{c}"
    if connection.vendor == "sqlite":
        # `->>` gives SQL values (JSON true -> 1); a JSON column keeps its JSON text (`->`), as Django stores it.
        return "json_each(%s) AS r", lambda c, is_json: f"r.value {'->' if is_json else '->>'} '$.{c}'"
    raise NotImplementedError(f"bulk writes through JSON are not implemented for {connection.vendor}")


def _json_columns(model: type[models.Model]) -> set[str]:
    return {_column(f) for f in model._meta.concrete_fields if isinstance(f, models.JSONField)}


def insert_rows(
    model: type[models.Model], rows: Sequence[Mapping[str, Any]], *, returning: Sequence[str] = ()
) -> list[tuple[Any, ...]]:
    """INSERT `rows` (dicts by attribute name, all with the same keys) in one statement; the `returning` columns
    of the inserted rows, in no particular order."""
    if not rows:
        return []
    columns, shared = _columns(model, set(rows[0]))
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    source, value = _from_json(table)
    json_columns = _json_columns(model)
    values = ", ".join(value(c, c in json_columns) for c in columns)
    sql = f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) SELECT {values} FROM {source}"
    if returning:
        sql += f" RETURNING {', '.join(quote(c) for c in returning)}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [_payload(model, rows, shared)])
        return [tuple(row) for row in cursor.fetchall()] if returning else []


def encode_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as the JSON text `insert_row_groups` takes (keys: column names); made ahead, e.g. while other work
    runs, so the INSERT itself only joins texts."""
    return json.dumps(rows, allow_nan=False)


def insert_row_groups(
    model: type[models.Model], groups: Sequence[tuple[Mapping[str, Any], str]], row_columns: Sequence[str]
) -> None:
    """INSERT every row of every group in one statement. A group is (values of its rows' other columns, by
    attribute name, e.g. the parent's key; its rows as `encode_rows` text, each with the `row_columns`)."""
    if not groups:
        return
    columns, shared = _columns(model, set(groups[0][0]) | set(row_columns))
    by_column = {field.attname: _column(field) for field in model._meta.concrete_fields}
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    json_columns = _json_columns(model)
    in_rows = set(row_columns)
    if connection.vendor == "postgresql":
        source = (
            f"json_array_elements(%s::json) AS g, json_populate_record(NULL::{table}, g.value) AS gr, "
            f"json_populate_recordset(NULL::{table}, g.value -> '_rows') AS r"
        )
        values = [f"r.{c}" if c in in_rows else f"gr.{c}" for c in columns]
    elif connection.vendor == "sqlite":
        source = "json_each(%s) AS g, json_each(g.value, '$._rows') AS r"
        values = [
            f"{'r' if c in in_rows else 'g'}.value {'->' if c in json_columns else '->>'} '$.{c}'" for c in columns
        ]
    else:
        raise NotImplementedError(f"bulk writes through JSON are not implemented for {connection.vendor}")
    payload = ",".join(
        _with_rows(json.dumps({**shared, **{by_column[k]: v for k, v in values_of.items()}}, allow_nan=False), rows)
        for values_of, rows in groups
    )
    sql = f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) SELECT {', '.join(values)} FROM {source}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [f"[{payload}]"])


def _with_rows(group: str, rows: str) -> str:
    """The group object's JSON text with its rows' text added under "_rows" (joined, not encoded again)."""
    return f'{{"_rows": {rows}' + (f", {group[1:]}" if group != "{}" else "}")


def update_rows(model: type[models.Model], rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> None:
    """UPDATE the `fields` of the rows whose primary keys are `row["pk"]`, in one statement."""
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    pk = model._meta.pk
    assert pk is not None
    targets = {name: _column(model._meta.get_field(name)) for name in fields}
    key = _column(pk)
    payload = json.dumps([{key: row["pk"], **{c: row[name] for name, c in targets.items()}} for row in rows])
    source, value = _from_json(table)
    json_columns = _json_columns(model)
    assignments = ", ".join(f"{quote(c)} = {value(c, c in json_columns)}" for c in targets.values())
    where = f"{table}.{quote(key)} = {value(key, False)}"
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {assignments} FROM {source} WHERE {where}", [payload])
