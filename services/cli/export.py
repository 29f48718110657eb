"""`cim export`: the stored model in other tools' formats; the commands live with their analysis family
(water: `epanet`, drainage: `swmm`) and register on this group."""

from __future__ import annotations

import typer

app = typer.Typer(help="Export the stored model to other tools' formats.\n\n"
                  "Example: cim export epanet --utility water --out water.inp; cim export swmm --out rain.inp",
                  no_args_is_help=True)
