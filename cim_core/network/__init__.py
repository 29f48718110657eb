"""The pipe network model, shared by the network importers and the analyses.

- `columns`: a network being built, as numpy columns of nodes and segments, and snapping of segment ends;
- `heights`: ground, invert and axis elevation of every segment end and node;
- `objects`: city objects (typed pipe records, swept meshes) from the columns, and writing them;
- `graph`: a stored network loaded as a graph (components, flow direction, reachability);
- `queries`: the SQL reads behind them.
"""
