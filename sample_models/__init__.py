"""Generated sample models: a Zhumadian central district (GIS layers, pipe networks, IFC buildings).

`sample_models.district.generate(out, scale=1, seed=7)` writes the district; the CLI exposes it as
`cim sample generate --out DIR [--scale N] [--seed S]`. `sample_models.district.load(out)` imports it
(what `cim demo` does).
"""
