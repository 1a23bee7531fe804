"""Hot-path statements compiled once per dialect and run on the DBAPI cursor.

``Connection.execute`` costs ~100-150 µs of Python per statement (cache key,
parameter construction, bind processors, result set-up) where SQLite's own work is
a few tens: it was most of a periodic CWMP session's store time. A ``Prepared``
statement is still defined once with SQLAlchemy Core, for both backends; what is
skipped is the per-execution machinery. Its SQL is compiled on first use with a
dialect, together with the order of its parameters, the conversion of each (the
column types' bind processors: aware datetimes to UTC, JSON) and of each result
column (result processors: datetimes back to aware UTC, JSON, booleans). Each run
then goes to the one cursor kept with the connection's DBAPI connection, inside the
transaction the ``Connection`` has open (it is begun if it is not, as ``execute``
would), and driver errors come out as SQLAlchemy's (``sa.exc.IntegrityError``...), a
lost connection invalidated as ``execute`` does.

Limits, checked when compiled: no Python-side column defaults (give every column),
and one expanding ``IN`` list at most per statement, not empty. Engine events and
echo logging do not see these statements.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

#: what can be prepared: a query or an INSERT/UPDATE/DELETE
Statement = sa.Select[*tuple[Any, ...]] | sa.UpdateBase
#: a parameter's place: (key in the caller's mapping or None for a constant, constant, conversion)
_Slot = tuple[str | None, Any, Callable[[Any], Any] | None]


@dataclass
class _Compiled:
    """One statement's SQL for one dialect, and how to fill its parameters and read its rows."""

    sql: str
    slots: tuple[_Slot, ...]
    #: the driver's parameter names, in slot order; None for a positional paramstyle
    names: tuple[str, ...] | None
    keys: tuple[str, ...]
    types: tuple[sa.types.TypeEngine[Any], ...]
    #: the expanding parameter: (its key, its slot, the placeholder of one element)
    expanding: tuple[str, int, str] | None = None
    variants: dict[int, tuple[str, tuple[_Slot, ...], tuple[str, ...] | None]] = field(default_factory=dict)
    convert_row: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = None

    def arguments(self, params: Mapping[str, Any]) -> tuple[str, Any]:
        """The SQL and the driver's parameters for ``params``."""
        sql, slots, names = self.sql, self.slots, self.names
        if self.expanding is not None:
            sql, slots, names, params = self._expand(params)
        values = []
        for key, constant, proc in slots:
            value = constant if key is None else params[key]
            values.append(value if proc is None else proc(value))
        return sql, (tuple(values) if names is None else dict(zip(names, values, strict=True)))

    def _expand(
        self, params: Mapping[str, Any]
    ) -> tuple[str, tuple[_Slot, ...], tuple[str, ...] | None, Mapping[str, Any]]:
        assert self.expanding is not None
        key, at, placeholder = self.expanding
        items = list(params[key])
        if not items:
            raise ValueError(f"{key}: an empty list; the statement needs at least one value")
        n = len(items)
        variant = self.variants.get(n)
        if variant is None:
            proc = self.slots[at][2]
            elements = tuple((f"{key}\x00{i}", None, proc) for i in range(n))
            slots = self.slots[:at] + elements + self.slots[at + 1 :]
            if self.names is None:
                listed = ", ".join([placeholder] * n)
                names = None
            else:
                element_names = tuple(f"{key}_{i + 1}" for i in range(n))
                listed = ", ".join(placeholder % {"name": name} for name in element_names)
                names = self.names[:at] + element_names + self.names[at + 1 :]
            sql = self.sql.replace(f"__[POSTCOMPILE_{key}]", listed)
            variant = self.variants[n] = (sql, slots, names)
        sql, slots, names = variant
        flat = dict(params)
        flat.update((f"{key}\x00{i}", v) for i, v in enumerate(items))
        return sql, slots, names, flat

    def many(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """The driver's parameters for each of ``rows``, converted column by column.

        What ``arguments`` does per row, for the 100-700 rows of a discovery's upserts: each
        column is taken from every row at once, and a conversion (a boolean's, a datetime's) is
        called once per run of the same object (``read_at``'s one ``now``, ``True``/``False``),
        the conversions being pure. No IN list here (``executemany`` refuses those).
        """
        columns: list[Any] = []
        count = len(rows)
        for key, constant, proc in self.slots:
            if key is None:
                columns.append([constant] * count)
                continue
            column = [row[key] for row in rows]
            if proc is not None:
                converted: list[Any] = []
                append = converted.append
                last_in: Any = object()
                last_out: Any = None
                for value in column:
                    if value is not last_in:
                        last_in, last_out = value, proc(value)
                    append(last_out)
                column = converted
            columns.append(column)
        if self.names is None:
            return list(zip(*columns, strict=True))
        names = self.names
        return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]

    def rows(self, cursor: Any, dialect: Dialect) -> list[tuple[Any, ...]]:
        """The cursor's rows with each column's result conversion applied."""
        rows = cursor.fetchall()
        if self.convert_row is None:
            self.convert_row = _row_converter(dialect, self.types, cursor.description)
        convert = self.convert_row
        return [convert(r) for r in rows]


def _row_converter(
    dialect: Dialect, types: Sequence[sa.types.TypeEngine[Any]], description: Any
) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    procs = [
        t.dialect_impl(dialect).result_processor(dialect, column[1])
        for t, column in zip(types, description, strict=True)
    ]
    if not any(procs):
        return tuple

    def convert(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple([v if p is None else p(v) for p, v in zip(procs, row, strict=True)])

    return convert


def _cursor(conn: Connection) -> Any:
    """A cursor of the connection's DBAPI connection, made once and kept with it (in the pool's
    ``info`` of that connection): making one per statement cost ~10 µs on psycopg."""
    fairy = conn.connection
    dbapi = fairy.dbapi_connection
    assert dbapi is not None  # a checked-out connection has its DBAPI connection
    kept = fairy.info.get("acs.cursor")
    if kept is None or kept[0] is not dbapi:  # a new connection, or one replaced after a failure
        kept = fairy.info["acs.cursor"] = (dbapi, dbapi.cursor())
    return kept[1]


class Prepared:
    """A Core statement run through SQL compiled once per dialect, on the connection's DBAPI cursor.

    ``statement`` may be a function of the dialect's name, for constructs of one dialect
    (``postgresql.insert(...).on_conflict_do_update``).

    ``columns``: for an INSERT given rows of values, the columns the rows carry (all the
    rows of one call carry the same). An INSERT without RETURNING fetches no generated key.
    """

    def __init__(
        self, statement: Statement | Callable[[str], Statement], *, columns: Iterable[str] | None = None
    ) -> None:
        self.statement = statement
        self.columns = list(columns) if columns is not None else None
        #: per Dialect instance (one per engine), dropped with it
        self._compiled: weakref.WeakKeyDictionary[Dialect, _Compiled] = weakref.WeakKeyDictionary()

    def compiled(self, dialect: Dialect) -> _Compiled:
        """The statement's SQL for ``dialect``, compiled on first use."""
        found = self._compiled.get(dialect)
        if found is None:
            found = self._compiled[dialect] = self._compile(dialect)
        return found

    def _compile(self, dialect: Dialect) -> _Compiled:
        statement = self.statement(dialect.name) if callable(self.statement) else self.statement
        if isinstance(statement, sa.Insert) and not statement.exported_columns:
            statement = statement.inline()  # else PostgreSQL would be asked for the new row's key
        compiled = statement.compile(dialect=dialect, column_keys=self.columns)
        if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
            raise ValueError(
                f"{compiled.string!r}: give every column a value, Python-side defaults are not run"
            )
        if dialect.paramstyle not in _PLACEHOLDER:
            raise ValueError(f"paramstyle {dialect.paramstyle} is not supported")
        positional = compiled.positiontup is not None
        if positional:
            order = list(compiled.positiontup or ())
        else:
            found = _BIND_NAME[dialect.paramstyle].finditer(compiled.string)
            order = list(dict.fromkeys(m.group(1) or m.group(2) for m in found))
        escaped = {v: k for k, v in (compiled.escaped_bind_names or {}).items()}
        slots: list[_Slot] = []
        expanding = None
        for name in order:
            bind = compiled.binds[escaped.get(name, name)]
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if bind.expanding:
                if expanding is not None:
                    raise ValueError(f"{compiled.string!r}: one expanding IN list at most")
                expanding = (bind.key, len(slots), _PLACEHOLDER[dialect.paramstyle])
            if bind.required or bind.expanding:
                slots.append((bind.key, None, proc))
            else:  # a value written into the statement ("open"): converted once, here
                value = bind.effective_value
                slots.append((None, proc(value) if proc is not None and value is not None else value, None))
        outputs = list(statement.exported_columns)
        names = None if positional else tuple(order)
        return _Compiled(
            compiled.string,
            tuple(slots),
            names,
            tuple(cast(str, c.key) for c in outputs),  # a statement's columns have keys
            tuple(c.type for c in outputs),
            expanding,
        )

    # --- running it ---------------------------------------------------------------------------

    def _run(
        self, conn: Connection, params: Mapping[str, Any]
    ) -> tuple[_Compiled, list[tuple[Any, ...]], int]:
        c = self.compiled(conn.dialect)
        sql, args = c.arguments(params)
        if not conn.in_transaction():
            conn.begin()  # as Connection.execute's autobegin
        cursor = _cursor(conn)
        try:
            cursor.execute(sql, args)
            rows = c.rows(cursor, conn.dialect) if c.keys else []
            return c, rows, cursor.rowcount
        except conn.dialect.loaded_dbapi.Error as e:
            # raises it as SQLAlchemy's; no cursor given, so the kept one is not closed
            conn._handle_dbapi_exception(e, sql, args, None, None)

    def execute(self, conn: Connection, params: Mapping[str, Any] | None = None) -> int:
        """Run it; returns the driver's rowcount (rows inserted, updated or deleted)."""
        return self._run(conn, params or {})[2]

    def executemany(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run it once per parameter set, through the driver's ``executemany`` (no rows returned)."""
        if not rows:
            return
        c = self.compiled(conn.dialect)
        if c.expanding is not None or c.keys:
            raise ValueError("executemany takes statements without IN lists or rows to return")
        sql = c.sql
        args = c.many(rows)
        if not conn.in_transaction():
            conn.begin()
        cursor = _cursor(conn)
        try:
            if len(args) == 1:  # psycopg runs executemany in pipeline mode: more round trips for one row
                cursor.execute(sql, args[0])
            else:
                cursor.executemany(sql, args)
        except conn.dialect.loaded_dbapi.Error as e:
            conn._handle_dbapi_exception(e, sql, args, None, None)

    def all(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Every row, as tuples of converted values."""
        return self._run(conn, params or {})[1]

    def first(self, conn: Connection, params: Mapping[str, Any] | None = None) -> tuple[Any, ...] | None:
        """The first row, or None when there is none."""
        rows = self._run(conn, params or {})[1]
        return rows[0] if rows else None

    def scalar(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None when there is no row."""
        rows = self._run(conn, params or {})[1]
        return rows[0][0] if rows else None

    def mappings(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every row, as a dict by column key."""
        c, rows, _ = self._run(conn, params or {})
        keys = c.keys
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def first_mapping(
        self, conn: Connection, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """The first row as a dict by column key, or None when there is none."""
        c, rows, _ = self._run(conn, params or {})
        return dict(zip(c.keys, rows[0], strict=True)) if rows else None


#: how each named paramstyle writes a parameter (to list them in order) and one expanded element
_BIND_NAME = {
    "pyformat": re.compile(r"%\((\w+)\)s|__\[POSTCOMPILE_(\w+)\]"),
    "named": re.compile(r"(?<![:\w]):(\w+)|__\[POSTCOMPILE_(\w+)\]"),
}
_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%%(%(name)s)s", "named": ":%(name)s"}
