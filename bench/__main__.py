"""python -m bench NAME [--scale N] | python -m bench all — run benchmarks, write bench/results/NAME.json."""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"


def available() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_"))


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next(int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_mb": mem, "python": platform.python_version(),
            "os": platform.platform(), "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                                                capture_output=True, text=True, cwd=HERE).stdout.strip()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 epilog="example: python -m bench gis_import --scale 1")
    ap.add_argument("name", help=f"one of: all, {', '.join(available())}")
    ap.add_argument("--scale", type=float, default=1.0, help="sample district scale (1 = about 3,000 buildings)")
    args = ap.parse_args(argv)
    names = available() if args.name == "all" else [args.name]
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"error: no benchmark named {unknown[0]!r}; choose from {', '.join(available())}", file=sys.stderr)
        return 2
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        work = HERE / "work" / name
        work.mkdir(parents=True, exist_ok=True)
        print(f"== {name} (scale {args.scale})", flush=True)
        figures = importlib.import_module(f"bench.{name}").run(args.scale, work)
        record = {"benchmark": name, "scale": args.scale, "date": dt.datetime.now().isoformat(timespec="seconds"),
                  "machine": machine(), "results": figures}
        (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=2, ensure_ascii=False))
        print(json.dumps(figures, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
