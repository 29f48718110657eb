"""The city information model: settings, database, schema, CRS, geometry kernels and errors.

cim_core knows no file format and no web framework; importers and services build on it.
"""
