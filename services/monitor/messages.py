"""Reading messages: parse and check them, sorting each into stored readings or dead letters.

MQTT topics:
- `cim/{sensor}/reading`: one reading, `{"time": ..., "value": 1.5, "quality": 0}`;
- `cim/gateway/{gateway}`: many, `{"readings": [{"sensor": "GAS-001", "time": ..., "value": ...}, ...]}`,
  the same body as `POST /api/readings`.
`time` is an ISO 8601 string with an offset or seconds since the epoch; `quality` is optional (integer).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

from cim_core.readings import DeadLetter, Reading, SensorDirectory
from cim_core.settings import get_settings

SINGLE_TOPIC = "cim/+/reading"
GATEWAY_TOPIC = "cim/gateway/+"
# what a dead letter keeps of an offending payload
KEEP_PAYLOAD = 4096


class Malformed(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


@dataclass
class Sorted:
    """The readings of a batch of messages and the dead letters."""
    readings: list[Reading] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Window:
    """The times a batch accepts, from the settings, read once per batch (reading them costs ~16 us)."""
    now: datetime
    earliest: datetime
    latest: datetime
    max_payload: int

    @classmethod
    def at(cls, now: datetime) -> Window:
        s = get_settings()
        return cls(now, now - timedelta(seconds=s.reading_max_past_s), now + timedelta(seconds=s.reading_max_future_s),
                   s.reading_max_payload)


def _time(raw, w: Window) -> datetime:
    if raw.__class__ is str:
        try:
            t = datetime.fromisoformat(raw)
        except ValueError:
            raise Malformed("wrong-type", f"time {raw[:64]!r} is not ISO 8601") from None
        if t.tzinfo is None:
            raise Malformed("wrong-type", f"time {raw[:64]!r} has no UTC offset")
    elif isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise Malformed("wrong-type", f"time must be an ISO 8601 string or epoch seconds, not {type(raw).__name__}")
    else:
        if not math.isfinite(raw):
            raise Malformed("non-finite", "time is not a finite number")
        try:
            t = datetime.fromtimestamp(raw, UTC)
        except (OverflowError, OSError, ValueError):
            raise Malformed("time-out-of-range", f"time {raw} is out of range") from None
    if t > w.latest:
        raise Malformed("time-out-of-range", f"time {t.isoformat()} is in the future")
    if t < w.earliest:
        raise Malformed("time-out-of-range", f"time {t.isoformat()} is too far in the past")
    return t


def _value(raw) -> float:
    if raw.__class__ is float:  # the common case first
        if math.isfinite(raw):
            return raw
        raise Malformed("non-finite", f"value {raw} is not finite")
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise Malformed("wrong-type", f"value must be a number, not {type(raw).__name__}")
    v = float(raw)
    if not math.isfinite(v):
        raise Malformed("non-finite", f"value {raw} is not finite")
    return v


def _quality(raw) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not -32768 <= raw <= 32767:
        raise Malformed("wrong-type", "quality must be a small integer")
    return raw


def reading(item, code: str | None, sensors: SensorDirectory, w: Window) -> Reading:
    """One reading object checked against the sensor directory (code from the topic or the item)."""
    if not isinstance(item, dict):
        raise Malformed("wrong-type", f"a reading must be an object, not {type(item).__name__}")
    code = code if code is not None else item.get("sensor")
    if not isinstance(code, str):
        raise Malformed("wrong-type", "sensor must be a string")
    if "time" not in item or "value" not in item:
        raise Malformed("wrong-type", "a reading needs time and value")
    sensor = sensors.get(code)
    if sensor is None:
        raise Malformed("unknown-sensor", f"no sensor with code {code[:64]!r}")
    return sensor.id, _time(item["time"], w), _value(item["value"]), _quality(item.get("quality"))


def _decode(payload: bytes, max_payload: int):
    if len(payload) > max_payload:
        raise Malformed("oversized", f"{len(payload)} bytes > {max_payload}")
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        pass
    try:  # the slow parser on the rare failure: it reads NaN and Infinity, which then fail as non-finite
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Malformed("not-json", str(exc)[:200]) from None


def gateway_items(body) -> list:
    if not isinstance(body, dict) or not isinstance(body.get("readings"), list):
        raise Malformed("wrong-type", 'a gateway message is {"readings": [...]}')
    return body["readings"]


# A decoded message: (topic, reading objects, sensor code of the topic or None), or a dead letter.
Decoded = tuple[str, list, "str | None"] | DeadLetter


def decode(topic: str, payload: bytes, w: Window, source: str = "mqtt") -> Decoded:
    """A message's reading objects (unchecked), or a dead letter when the message as a whole is bad."""
    parts = topic.split("/")
    try:
        if len(parts) == 3 and parts[0] == "cim" and parts[1] == "gateway":
            return topic, gateway_items(_decode(payload, w.max_payload)), None
        if len(parts) == 3 and parts[0] == "cim" and parts[2] == "reading":
            return topic, [_decode(payload, w.max_payload)], parts[1]
        raise Malformed("bad-topic", f"topic {topic[:200]!r} is neither cim/<sensor>/reading nor cim/gateway/<id>")
    except Malformed as exc:
        return DeadLetter(source, exc.reason, str(exc), topic, payload[:KEEP_PAYLOAD])


def sort_decoded(decoded: list[Decoded], sensors: SensorDirectory, w: Window, source: str = "mqtt") -> Sorted:
    """Readings and dead letters of decoded messages; one bad reading of a gateway message is a dead letter
    of its own, the others are stored."""
    out = Sorted()
    for d in decoded:
        if isinstance(d, DeadLetter):
            out.dead.append(d)
        else:
            sort_items(d[1], d[2], sensors, w, out, source, d[0])
    return out


def sort_batch(items: list[tuple[str, bytes]], sensors: SensorDirectory, source: str = "mqtt") -> Sorted:
    """Readings and dead letters of (topic, payload) messages."""
    w = Window.at(datetime.now(UTC))
    return sort_decoded([decode(t, p, w, source) for t, p in items], sensors, w, source)


def sort_items(entries: list, code: str | None, sensors: SensorDirectory, w: Window, out: Sorted,
               source: str, topic: str | None) -> None:
    append = out.readings.append
    for item in entries:
        try:
            append(reading(item, code, sensors, w))
        except Malformed as exc:
            out.dead.append(DeadLetter(source, exc.reason, str(exc), topic,
                                       json.dumps(item, default=str).encode()[:KEEP_PAYLOAD]))
