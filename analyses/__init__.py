"""Analyses: computations over the city model, read and stored through cim_core.

One module per analysis family, each a plain Python call that the CLI and the API wrap. Analyses know
neither file formats nor HTTP, and importers never import them.
"""
