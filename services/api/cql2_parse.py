"""CQL2 (OGC API - Features Part 3): a strict parser for CQL2 text and CQL2 JSON (the compiler to SQL
is services.api.cql2).

Supported: comparison (= <> < > <= >=), AND / OR / NOT, LIKE, BETWEEN, IN, IS NULL, boolean
literals, DATE() / TIMESTAMP(), and the spatial predicates S_INTERSECTS, S_DISJOINT, S_CONTAINS,
S_WITHIN, S_EQUALS, S_TOUCHES, S_CROSSES, S_OVERLAPS with WKT or BBOX() in text and GeoJSON or
{"bbox": [...]} in JSON. Anything else is a FilterError naming what is wrong and where.

Both syntaxes parse into the same small tree of tuples:
  ("and", [n...]) ("or", [n...]) ("not", n) ("bool", b)
  ("cmp", op, a, b) ("like", a, pattern) ("between", a, lo, hi) ("in", a, [v...]) ("isnull", a)
  ("spatial", name, a, b)
with operands ("prop", name), ("lit", value) or ("geom", shapely geometry).
"""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

import shapely

from cim_core.errors import InputError


class FilterError(InputError):
    """A filter that does not parse or does not fit the collection."""


COMPARISONS = {"=": "=", "<>": "<>", "<": "<", ">": ">", "<=": "<=", ">=": ">="}
FLIPPED = {"=": "=", "<>": "<>", "<": ">", ">": "<", "<=": ">=", ">=": "<="}
SPATIAL = {"s_intersects": "ST_Intersects", "s_disjoint": "ST_Disjoint", "s_contains": "ST_Contains",
           "s_within": "ST_Within", "s_equals": "ST_Equals", "s_touches": "ST_Touches",
           "s_crosses": "ST_Crosses", "s_overlaps": "ST_Overlaps"}
WKT_TYPES = {"POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING", "MULTIPOLYGON",
             "GEOMETRYCOLLECTION"}
GEOJSON_TYPES = {"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon",
                 "GeometryCollection"}
MAX_DEPTH = 64
MAX_NODES = 2000

# ---------------------------------------------------------------- CQL2 text
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<str>'(?:[^']|'')*')
  | (?P<qid>"(?:[^"]|"")+")
  | (?P<id>[A-Za-z_][A-Za-z0-9_.:]*)
  | (?P<op><>|<=|>=|=|<|>|\(|\)|,)
""", re.VERBOSE)


@dataclass
class _Tok:
    kind: str
    value: str
    pos: int
    end: int


def _tokenize(text: str) -> list[_Tok]:
    toks, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise FilterError(f"CQL2 text: unexpected character {text[pos]!r} at position {pos}")
        if m.lastgroup != "ws":
            toks.append(_Tok(m.lastgroup, m.group(), m.start(), m.end()))
        pos = m.end()
    return toks


class _TextParser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0

    # -- token helpers
    def peek(self, ahead: int = 0) -> _Tok | None:
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else None

    def kw(self, *words: str, ahead: int = 0) -> bool:
        t = self.peek(ahead)
        return t is not None and t.kind == "id" and t.value.upper() in words

    def take_kw(self, *words: str) -> bool:
        if self.kw(*words):
            self.i += 1
            return True
        return False

    def take_op(self, op: str) -> bool:
        t = self.peek()
        if t is not None and t.kind == "op" and t.value == op:
            self.i += 1
            return True
        return False

    def expect_op(self, op: str) -> None:
        if not self.take_op(op):
            self.fail(f"expected {op!r}")

    def fail(self, what: str):
        t = self.peek()
        where = f"at position {t.pos} ({t.value!r})" if t else "at the end"
        raise FilterError(f"CQL2 text: {what} {where}")

    # -- grammar
    def parse(self):
        if not self.toks:
            raise FilterError("CQL2 text: the filter is empty")
        node = self.or_expr()
        if self.peek() is not None:
            self.fail("unexpected token")
        return node

    def or_expr(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail("the filter is nested too deeply")
        args = [self.and_expr()]
        while self.take_kw("OR"):
            args.append(self.and_expr())
        self.depth -= 1
        return args[0] if len(args) == 1 else ("or", args)

    def and_expr(self):
        args = [self.not_expr()]
        while self.take_kw("AND"):
            args.append(self.not_expr())
        return args[0] if len(args) == 1 else ("and", args)

    def not_expr(self):
        if self.take_kw("NOT"):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                self.fail("the filter is nested too deeply")
            node = ("not", self.not_expr())
            self.depth -= 1
            return node
        return self.primary()

    def primary(self):
        if self.take_op("("):
            node = self.or_expr()
            self.expect_op(")")
            return node
        t = self.peek()
        if t is None:
            self.fail("expected a predicate")
        if t.kind == "id" and t.value.lower() in SPATIAL and self.peek(1) and self.peek(1).value == "(":
            self.i += 2
            a = self.geom_operand()
            self.expect_op(",")
            b = self.geom_operand()
            self.expect_op(")")
            return ("spatial", t.value.lower(), a, b)
        if self.kw("TRUE", "FALSE") and not self._starts_predicate(1):
            self.i += 1
            return ("bool", t.value.upper() == "TRUE")
        return self.predicate()

    def _starts_predicate(self, ahead: int) -> bool:
        t = self.peek(ahead)
        return t is not None and ((t.kind == "op" and t.value in COMPARISONS)
                                  or (t.kind == "id" and t.value.upper() in ("LIKE", "BETWEEN", "IN", "IS", "NOT")))

    def predicate(self):
        left = self.scalar()
        t = self.peek()
        if t is not None and t.kind == "op" and t.value in COMPARISONS:
            self.i += 1
            return ("cmp", t.value, left, self.scalar())
        negate = self.take_kw("NOT")
        if self.take_kw("LIKE"):
            node = ("like", left, self.scalar())
        elif self.take_kw("BETWEEN"):
            lo = self.scalar()
            if not self.take_kw("AND"):
                self.fail("expected AND in BETWEEN")
            node = ("between", left, lo, self.scalar())
        elif self.take_kw("IN"):
            self.expect_op("(")
            values = [self.scalar()]
            while self.take_op(","):
                values.append(self.scalar())
            self.expect_op(")")
            node = ("in", left, values)
        elif not negate and self.take_kw("IS"):
            negate = self.take_kw("NOT")
            if not self.take_kw("NULL"):
                self.fail("expected NULL after IS")
            node = ("isnull", left)
        else:
            self.fail("expected a comparison, LIKE, BETWEEN, IN or IS NULL")
        return ("not", node) if negate else node

    def scalar(self):
        t = self.peek()
        if t is None:
            self.fail("expected a value or a property")
        if t.kind == "num":
            self.i += 1
            return ("lit", _number(t.value))
        if t.kind == "str":
            self.i += 1
            return ("lit", t.value[1:-1].replace("''", "'"))
        if t.kind == "qid":
            self.i += 1
            return ("prop", t.value[1:-1].replace('""', '"'))
        if t.kind == "id":
            word = t.value.upper()
            if word in ("TRUE", "FALSE"):
                self.i += 1
                return ("lit", word == "TRUE")
            if word in ("DATE", "TIMESTAMP") and self.peek(1) and self.peek(1).value == "(":
                self.i += 2
                s = self.peek()
                if s is None or s.kind != "str":
                    self.fail(f"expected a quoted {word.lower()} in {word}()")
                self.i += 1
                self.expect_op(")")
                return ("lit", _temporal(word.lower(), s.value[1:-1]))
            if word in ("AND", "OR", "NOT", "LIKE", "BETWEEN", "IN", "IS", "NULL"):
                self.fail("expected a value or a property")
            if self.peek(1) and self.peek(1).value == "(":
                self.fail(f"unsupported function {t.value}()")
            self.i += 1
            return ("prop", t.value)
        self.fail("expected a value or a property")

    def geom_operand(self):
        t = self.peek()
        if t is None:
            self.fail("expected a geometry")
        word = t.value.upper() if t.kind == "id" else ""
        if word == "BBOX":
            self.i += 1
            self.expect_op("(")
            nums = [self.scalar()]
            while self.take_op(","):
                nums.append(self.scalar())
            self.expect_op(")")
            return ("geom", _bbox_geometry([n[1] for n in nums]))
        if word in WKT_TYPES or (word.endswith("Z") and word[:-1] in WKT_TYPES):
            # The WKT runs from the keyword to its matching parenthesis; shapely parses it.
            start, depth = t.pos, 0
            self.i += 1
            if self.kw("Z"):
                self.i += 1
            while True:
                tok = self.peek()
                if tok is None:
                    self.fail("unterminated geometry")
                self.i += 1
                if tok.value == "(":
                    depth += 1
                elif tok.value == ")":
                    depth -= 1
                    if depth == 0:
                        break
                elif depth == 0:
                    self.fail("expected '(' after the geometry type")
            return ("geom", _wkt(self.text[start:tok.end]))
        node = self.scalar()
        if node[0] != "prop":
            self.fail("expected a geometry or a geometry property")
        return node


def _number(text: str):
    try:
        v = int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    except (ValueError, OverflowError):
        raise FilterError(f"CQL2: {text!r} is not a number") from None
    if isinstance(v, float) and not math.isfinite(v):
        raise FilterError(f"CQL2: {text!r} is not a finite number")
    return v


def _temporal(kind: str, text: str):
    try:
        if kind == "date":
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise FilterError(f"CQL2: {text!r} is not a valid {kind} (ISO 8601)") from None


def _valid(g, what: str):
    if not isinstance(g, shapely.Geometry) or g.is_empty:
        raise FilterError(f"CQL2: {what}: empty geometry")
    if not shapely.is_valid(g):
        raise FilterError(f"CQL2: {what}: invalid geometry ({shapely.is_valid_reason(g)})")
    return g


def _wkt(text: str):
    try:
        g = shapely.from_wkt(text)
    except shapely.errors.ShapelyError as exc:
        raise FilterError(f"CQL2: bad WKT {text[:60]!r}: {str(exc).splitlines()[0]}") from None
    return _valid(g, "WKT")


def _bbox_geometry(nums) -> shapely.Geometry:
    if len(nums) not in (4, 6) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in nums):
        raise FilterError("CQL2: BBOX takes 4 or 6 numbers")
    x1, y1, x2, y2 = (nums[0], nums[1], nums[2], nums[3]) if len(nums) == 4 else (nums[0], nums[1], nums[3], nums[4])
    if x1 > x2 or y1 > y2:
        raise FilterError("CQL2: BBOX minimum is greater than its maximum")
    return shapely.box(x1, y1, x2, y2)


def parse_text(text: str):
    return _TextParser(text).parse()


# ---------------------------------------------------------------- CQL2 JSON
def parse_json(doc) -> tuple:
    counter = [0]
    return _json_bool(doc, 0, counter)


def _json_bool(node, depth, counter):
    counter[0] += 1
    if depth > MAX_DEPTH or counter[0] > MAX_NODES:
        raise FilterError("CQL2 JSON: the filter is too large or nested too deeply")
    if isinstance(node, bool):
        return ("bool", node)
    if not isinstance(node, dict) or "op" not in node or "args" not in node:
        raise FilterError(f"CQL2 JSON: expected {{\"op\": ..., \"args\": [...]}}, got {_short(node)}")
    op, args = node["op"], node["args"]
    if not isinstance(op, str) or not isinstance(args, list):
        raise FilterError("CQL2 JSON: 'op' must be a string and 'args' a list")
    lop = op.lower()

    def need(n):
        if len(args) != n:
            raise FilterError(f"CQL2 JSON: {op!r} takes {n} arguments, got {len(args)}")

    if lop in ("and", "or"):
        if len(args) < 2:
            raise FilterError(f"CQL2 JSON: {op!r} takes at least 2 arguments")
        return (lop, [_json_bool(a, depth + 1, counter) for a in args])
    if lop == "not":
        need(1)
        return ("not", _json_bool(args[0], depth + 1, counter))
    if op in COMPARISONS:
        need(2)
        return ("cmp", op, _json_scalar(args[0]), _json_scalar(args[1]))
    if lop == "like":
        need(2)
        return ("like", _json_scalar(args[0]), _json_scalar(args[1]))
    if lop == "between":
        need(3)
        return ("between", _json_scalar(args[0]), _json_scalar(args[1]), _json_scalar(args[2]))
    if lop == "in":
        need(2)
        if not isinstance(args[1], list) or not args[1]:
            raise FilterError("CQL2 JSON: the second argument of 'in' must be a non-empty list")
        return ("in", _json_scalar(args[0]), [_json_scalar(v) for v in args[1]])
    if lop == "isnull":
        need(1)
        return ("isnull", _json_scalar(args[0]))
    if lop in SPATIAL:
        need(2)
        return ("spatial", lop, _json_geom(args[0]), _json_geom(args[1]))
    raise FilterError(f"CQL2 JSON: unsupported operator {op!r}")


def _short(v) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _json_scalar(v):
    if isinstance(v, (bool, str)):
        return ("lit", v)
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            raise FilterError("CQL2 JSON: numbers must be finite")
        return ("lit", v)
    if isinstance(v, dict) and len(v) == 1:
        (k, val), = v.items()
        if k == "property" and isinstance(val, str) and val:
            return ("prop", val)
        if k in ("date", "timestamp") and isinstance(val, str):
            return ("lit", _temporal(k, val))
    raise FilterError(f"CQL2 JSON: expected a value or {{\"property\": ...}}, got {_short(v)}")


def _json_geom(v):
    if isinstance(v, dict) and set(v) == {"property"}:
        return _json_scalar(v)
    if isinstance(v, dict) and set(v) == {"bbox"} and isinstance(v["bbox"], list):
        return ("geom", _bbox_geometry(v["bbox"]))
    if isinstance(v, dict) and v.get("type") in GEOJSON_TYPES:
        try:
            g = shapely.geometry.shape(v)
        except Exception as exc:  # noqa: BLE001 - shapely raises several types for malformed GeoJSON
            raise FilterError(f"CQL2 JSON: bad GeoJSON {v.get('type')}: {exc}") from None
        return ("geom", _valid(g, "GeoJSON"))
    raise FilterError(f"CQL2 JSON: expected a GeoJSON geometry, {{\"bbox\": [...]}} or {{\"property\": ...}}, "
                      f"got {_short(v)}")


def parse(text: str, lang: str | None):
    """A filter tree from the `filter` parameter in `filter-lang` (cql2-text by default)."""
    import orjson

    lang = (lang or "cql2-text").lower()
    if lang == "cql2-text":
        return parse_text(text)
    if lang == "cql2-json":
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise FilterError(f"CQL2 JSON: not valid JSON: {exc}") from None
        return parse_json(doc)
    raise FilterError(f"unsupported filter-lang {lang!r}: use cql2-text or cql2-json")
