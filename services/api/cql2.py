"""CQL2 (OGC API - Features Part 3): the compiler of a parsed filter tree (services.api.cql2_parse) to
SQLAlchemy expressions in which every value is a bound parameter.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

import shapely
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from .cql2_parse import FLIPPED, SPATIAL, FilterError, parse

__all__ = ["Compiler", "FilterError", "Prop", "parse"]


# ---------------------------------------------------------------- compiling to SQL
@dataclass(frozen=True)
class Prop:
    """How a queryable property reads in SQL: a typed column, or an attributes JSONB key."""
    expr: sa.ColumnElement
    kind: str  # string | number | integer | date | boolean | json | geometry


Resolver = Callable[[str], Prop]


def _kind_of(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    return "string"


INT64 = 2 ** 63


def _param(value, kind: str):
    if kind == "boolean":
        return sa.literal(value, sa.Boolean)
    if kind == "number":
        if isinstance(value, int) and -INT64 <= value < INT64:
            return sa.literal(value, sa.BigInteger)
        try:
            return sa.literal(float(value), sa.Float)
        except OverflowError:
            raise FilterError(f"CQL2: {value} is out of range") from None
    if kind == "datetime":
        return sa.literal(value, sa.DateTime(timezone=value.tzinfo is not None))
    if kind == "date":
        return sa.literal(value, sa.Date)
    return sa.literal(value, sa.Text)


class Compiler:
    """Compiles a filter tree against a collection's properties.

    `geometry_srid(g)` turns a filter geometry (in filter-crs, axis order already normalised) into a
    SQL expression in the storage CRS.
    """

    def __init__(self, resolve: Resolver, geometry_sql: Callable[[shapely.Geometry], sa.ColumnElement]):
        self.resolve = resolve
        self.geometry_sql = geometry_sql

    def __call__(self, node) -> sa.ColumnElement:
        tag = node[0]
        if tag == "and":
            return sa.and_(*[self(n) for n in node[1]])
        if tag == "or":
            return sa.or_(*[self(n) for n in node[1]])
        if tag == "not":
            return sa.not_(self(node[1]))
        if tag == "bool":
            return sa.true() if node[1] else sa.false()
        if tag == "cmp":
            return self.compare(node[1], node[2], node[3])
        if tag == "like":
            return self.like(node[1], node[2])
        if tag == "between":
            a = self.operand(node[1])
            lo, hi = self.value(node[2], "BETWEEN"), self.value(node[3], "BETWEEN")
            kinds = {_kind_of(lo), _kind_of(hi)}
            if kinds not in ({"number"}, {"date"}, {"datetime"}, {"date", "datetime"}):
                raise FilterError("CQL2: BETWEEN needs two numbers or two dates")
            return sa.and_(self.compare_to(a, ">=", lo), self.compare_to(a, "<=", hi))
        if tag == "in":
            a = self.operand(node[1])
            return sa.or_(*[self.compare_to(a, "=", self.value(v, "IN")) for v in node[2]])
        if tag == "isnull":
            a = self.operand(node[1])
            if a.kind == "json":
                return a.expr.astext.is_(None)
            return a.expr.is_(None)
        if tag == "spatial":
            a, b = self.geometry(node[2]), self.geometry(node[3])
            return getattr(sa.func, SPATIAL[node[1]])(a, b)
        raise FilterError(f"CQL2: unsupported expression {tag}")

    # -- operands
    def operand(self, node) -> Prop:
        if node[0] == "prop":
            p = self.resolve(node[1])
            if p.kind == "geometry":
                raise FilterError(f"CQL2: {node[1]!r} is a geometry: use a spatial predicate such as S_INTERSECTS")
            return p
        return Prop(_param(node[1], _kind_of(node[1])), _kind_of(node[1]))

    def value(self, node, where: str):
        if node[0] != "lit":
            raise FilterError(f"CQL2: {where} takes literal values, not the property {node[1]!r}")
        return node[1]

    def geometry(self, node):
        if node[0] == "geom":
            return self.geometry_sql(node[1])
        if node[0] == "prop":
            p = self.resolve(node[1])
            if p.kind != "geometry":
                raise FilterError(f"CQL2: {node[1]!r} is not a geometry property")
            return p.expr
        raise FilterError("CQL2: a spatial predicate takes geometries")

    # -- predicates
    def compare(self, op: str, left, right) -> sa.ColumnElement:
        if left[0] == "lit" and right[0] == "prop":
            left, right, op = right, left, FLIPPED[op]
        if right[0] == "lit":
            return self.compare_to(self.operand(left), op, right[1])
        a, b = self.operand(left), self.operand(right)
        if a.kind == b.kind and a.kind != "json":
            return a.expr.op(op, is_comparison=True)(b.expr)
        numeric = {a.kind, b.kind} <= {"number", "integer"}
        if numeric:
            return a.expr.op(op, is_comparison=True)(b.expr)
        # properties of different or unknown types compare as text
        return self.text(a).op(op, is_comparison=True)(self.text(b))

    def text(self, p: Prop) -> sa.ColumnElement:
        if p.kind == "json":
            return p.expr.astext
        if p.kind == "string":
            return p.expr
        return sa.cast(p.expr, sa.Text)

    def compare_to(self, p: Prop, op: str, value) -> sa.ColumnElement:
        vk = _kind_of(value)
        if op not in ("=", "<>") and vk == "boolean":
            raise FilterError(f"CQL2: {op} is not defined for booleans")
        if p.kind == "json":
            if vk == "number":
                # cast only values that are JSON numbers: a string attribute never reaches ::float8
                num = sa.case((sa.func.jsonb_typeof(p.expr) == "number", sa.cast(p.expr.astext, sa.Float)))
                return num.op(op, is_comparison=True)(_param(value, "number"))
            if vk == "boolean":
                return p.expr.op(op, is_comparison=True)(sa.cast(sa.literal("true" if value else "false"), JSONB))
            text = value.isoformat() if vk in ("date", "datetime") else value
            return p.expr.astext.op(op, is_comparison=True)(_param(text, "string"))
        if p.kind in ("number", "integer"):
            if vk != "number":
                raise FilterError(f"CQL2: the property is a number, {value!r} is not")
            return p.expr.op(op, is_comparison=True)(_param(value, "number"))
        if p.kind == "date":
            if vk == "string":
                try:
                    value = dt.date.fromisoformat(value)
                except ValueError:
                    raise FilterError(f"CQL2: {value!r} is not a date; write DATE('YYYY-MM-DD')") from None
            elif vk == "datetime":
                value = value.date()
            elif vk != "date":
                raise FilterError(f"CQL2: the property is a date, {value!r} is not")
            return p.expr.op(op, is_comparison=True)(_param(value, "date"))
        if p.kind == "boolean":
            if vk != "boolean":
                raise FilterError(f"CQL2: the property is a boolean, {value!r} is not")
            return p.expr.op(op, is_comparison=True)(_param(value, "boolean"))
        # string columns (and literals compared with literals)
        if p.kind == "string" and vk != "string":
            raise FilterError(f"CQL2: the property is a string, {value!r} is not; quote it")
        if p.kind != "string":
            return p.expr.op(op, is_comparison=True)(_param(value, vk)) if p.kind == vk else sa.cast(p.expr, sa.Text).op(op, is_comparison=True)(
                _param(str(value), "string"))
        return p.expr.op(op, is_comparison=True)(_param(value, "string"))

    def like(self, left, pattern) -> sa.ColumnElement:
        if pattern[0] != "lit" or not isinstance(pattern[1], str):
            raise FilterError("CQL2: LIKE takes a quoted pattern")
        if re.search(r"(?<!\\)(\\\\)*\\$", pattern[1]):
            raise FilterError("CQL2: a LIKE pattern must not end with the escape character \\")
        return self.text(self.operand(left)).like(_param(pattern[1], "string"), escape="\\")
