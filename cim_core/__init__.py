"""The city information model: settings, database, schema, CRS, geometry kernels and errors.

cim_core knows no file format and no web framework; importers, analyses and services build on it.
The pipe network model (graph, snapping, heights, object building) is cim_core.network.
"""
