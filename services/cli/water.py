"""`cim water ...`: water supply operations (hydraulic model, burst isolation); and `cim export epanet`."""

from __future__ import annotations

import typer

from cim_core.errors import InputError

from .output import console

app = typer.Typer(help="Water supply operations: burst isolation, criticality, hydraulics.\n\n"
                  "Example: cim water isolate --pipe pipe:10", no_args_is_help=True)
export_app = typer.Typer(help="Export the stored model to other tools' formats.\n\n"
                         "Example: cim export epanet --utility water --out water.inp", no_args_is_help=True)


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """'xmin,ymin,xmax,ymax' in the storage CRS."""
    if text is None:
        return None
    try:
        box = tuple(float(v) for v in text.split(","))
    except ValueError:
        box = ()
    if len(box) != 4 or box[0] >= box[2] or box[1] >= box[3]:
        raise InputError(f"--bbox {text!r}: expected xmin,ymin,xmax,ymax with xmin < xmax and ymin < ymax")
    return box  # type: ignore[return-value]


@export_app.command("epanet")
def export_epanet(
    out: str = typer.Option(..., "--out", help="The .inp file to write."),
    utility: str = typer.Option("water", "--utility", help="The pressure network to export."),
    dataset: str = typer.Option(None, "--dataset", help="Only this dataset's network."),
    bbox: str = typer.Option(None, "--bbox", help="Only pipes in xmin,ymin,xmax,ymax (storage CRS)."),
    units: str = typer.Option(None, "--units", help="EPANET flow units (default: those of the imported model, "
                              "else LPS)."),
):
    """Write the stored network as a runnable EPANET 2.2 model, whichever importer brought it in: options,
    times, patterns, curves and controls of imported EPANET models come back; GIS pipes get a roughness from
    their material.

    Example: cim export epanet --utility water --bbox 501800,3649500,502800,3650500 --out district.inp
    """
    from analyses.water.model import export_epanet as export

    r = export(out, utility=utility, dataset=dataset, bbox=parse_bbox(bbox), units=units)
    console.print(f"{r['path']}: {r['nodes']} nodes, {r['links']} links ({r['units']})"
                  + (f"; {r['controls_left_out']} controls left out (elements outside the box)"
                     if r["controls_left_out"] else ""))
