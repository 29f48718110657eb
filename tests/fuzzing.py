"""Mutated source files for the importers' fuzz tests (tests/test_fuzz_*.py), and the one rule they check.

Every case either imports, leaving one complete dataset, or is refused with a CimError whose message is one
line naming the file, leaving the database as it was (no partial dataset); anything else (another exception,
a hang) fails the test.
"""
from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from conftest import new_database
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from cim_core.errors import CimError
from cim_core.migrate import upgrade

CASES = int(__import__("os").environ.get("CIM_FUZZ_CASES", "200"))
HANG_S = 30  # a case still running after this long counts as a hung import
FUZZ = settings(max_examples=CASES, deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
NUMBERS = ["0", "-1", "1e308", "-1e308", "nan", "inf", "-0", "1e-320", "99999999999999999999", "3.5", ""]
WORDS = ["", " ", "null", "[]", "{}", "\"\"", ";", "[", "]", "(", ")", "'", ",", "#", "\t", "\x00", "é", "汉",
         "$", "*", "\\"]


class Hang(BaseException):
    """An import ran past HANG_S (a BaseException, so no importer's `except Exception` can swallow it)."""


def engine_for(cluster, srid: int) -> sa.Engine:
    engine = sa.create_engine(new_database(cluster))
    upgrade(engine, srid=srid)
    return engine


def _state(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as c:
        return [tuple(r) for r in c.execute(sa.text(
            "select d.id, d.name, d.status, d.counts, "
            "(select count(*) from city_objects o where o.dataset_id = d.id) "
            "from datasets d order by d.id")).all()]


def check(import_file: Callable, path: Path, engine: sa.Engine, **options) -> str:
    """Import one mutated file under the fuzz rule; 'imported' or 'refused'."""
    before = _state(engine)

    def hang(*_):
        raise Hang(f"{path.name}: still importing after {HANG_S} s")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(HANG_S)
    try:
        import_file(path, engine=engine, dataset="fuzz", force=True, **options)
    except CimError as exc:
        message = str(exc)
        assert "\n" not in message and path.name in message, message
        assert _state(engine) == before, f"a refused import changed the database: {message}"
        return "refused"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    after = _state(engine)
    fuzz = [r for r in after if r[1] == "fuzz"]
    assert len(fuzz) == 1 and fuzz[0][2] == "complete", after
    assert sum(v for k, v in fuzz[0][3].items() if k != "qa_findings") == fuzz[0][4], fuzz
    assert [r for r in after if r[1] != "fuzz"] == [r for r in before if r[1] != "fuzz"]
    return "imported"


# ---------------------------------------------------------------- mutations
@st.composite
def text_mutation(draw, text: str) -> str:
    """The text with one to three edits: a line dropped, repeated or swapped, a number or token replaced,
    characters inserted or deleted, or the end cut off."""
    for _ in range(draw(st.integers(1, 3))):
        lines = text.split("\n")
        kind = draw(st.sampled_from(["drop", "repeat", "swap", "number", "token", "insert", "delete", "cut"]))
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        if kind == "drop":
            del lines[i]
        elif kind == "repeat":
            lines.insert(i, lines[i])
        elif kind == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind in ("number", "token"):
            pattern = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?" if kind == "number" else r"[^\s,;()\[\]{}:\"']+"
            spots = list(re.finditer(pattern, lines[i]))
            if spots:
                m = draw(st.sampled_from(spots))
                new = draw(st.sampled_from(NUMBERS if kind == "number" else WORDS + NUMBERS))
                lines[i] = lines[i][:m.start()] + new + lines[i][m.end():]
        else:
            text = "\n".join(lines)
            at = draw(st.integers(0, len(text)))
            if kind == "insert":
                text = text[:at] + draw(st.text(min_size=1, max_size=4)) + text[at:]
            elif kind == "delete":
                text = text[:at] + text[at + draw(st.integers(1, 20)):]
            else:
                text = text[:at]
            continue
        text = "\n".join(lines)
    return text


@st.composite
def json_mutation(draw, doc) -> str:
    """A JSON document with one to three values replaced (anywhere in the tree) or removed, as text; or a
    text mutation of it."""
    if draw(st.booleans()):
        return draw(text_mutation(json.dumps(doc, indent=1)))
    doc = json.loads(json.dumps(doc))
    for _ in range(draw(st.integers(1, 3))):
        node, path = doc, []
        while isinstance(node, (dict, list)) and node and draw(st.integers(0, 5)) > 0:
            key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
            path.append((node, key))
            node = node[key]
        if not path:
            continue
        parent, key = path[-1]
        if draw(st.integers(0, 3)) == 0:
            del parent[key]
        else:
            parent[key] = draw(st.sampled_from([None, [], {}, "", "x", 0, -1, 1e308, -1e308, 2 ** 70, 0.5,
                                                True, [[0, 0]], [0, 0, 0], {"type": "x"}]))
    return json.dumps(doc, allow_nan=True)


@st.composite
def bytes_mutation(draw, data: bytes) -> bytes:
    """Binary data with one to three bytes ranges overwritten, deleted or the end cut off."""
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        kind = draw(st.sampled_from(["overwrite", "delete", "cut"]))
        if kind == "overwrite":
            new = draw(st.binary(min_size=1, max_size=8))
            data = data[:at] + new + data[at + len(new):]
        elif kind == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 16)):]
        else:
            data = data[:at]
    return data
