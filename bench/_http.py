"""Load generation shared by the HTTP benchmarks: wrk runs over a list of URLs (and free ports, re-exported)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from cim_core.db import free_port

__all__ = ["free_port", "wrk"]

# 16 connections for 20 s, as ANCHORS.md measured the anchors.
WRK = ["-t2", "-c16", "-d20s", "--latency"]


def wrk(base: str, paths: list[str], work: Path, name: str, headers: dict[str, str] | None = None) -> dict:
    """wrk against `base`, rotating over `paths` with a Lua script (each request with `headers`), after a
    3 s warm-up: requests per second, p50 and p99 in ms, and the count of non-2xx/3xx answers."""
    script = work / f"rotate_{name}.lua"
    lua_headers = ", ".join(f'["{k}"] = "{v}"' for k, v in (headers or {}).items())
    script.write_text("paths = {\n" + ",\n".join(f'  "{p}"' for p in paths) + "\n}\n"
                      f"headers = {{ {lua_headers} }}\n"
                      "i = 0\nrequest = function()\n  i = i % #paths + 1\n"
                      "  return wrk.format(\"GET\", paths[i], headers)\nend\n")
    subprocess.run(["wrk", "-t2", "-c16", "-d3s", "-s", str(script), base], capture_output=True, check=False)
    out = subprocess.run(["wrk", *WRK, "-s", str(script), base], capture_output=True, text=True,
                         check=True).stdout
    (work / f"wrk_{name}.txt").write_text(out)

    def ms(label):
        m = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out)
        return round(float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)], 3) if m else None

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": ms("50"), "p99_ms": ms("99"), "non_2xx": int(errors.group(1)) if errors else 0}
