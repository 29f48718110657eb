"""Underground space analyses (issue 13): clearance, cover and clash checks with the rules as data,
excavation, cross-sections and long sections. Each is a plain Python call over the stored model:

- `clearances.check(bbox=..., dataset=...)`: every check, stored as a run with its findings;
- `rules.load_rules(path)`: make a city's rules file the database's rules (validated first);
- `excavation.excavate(polygon, depth, ...)`: what a pit reaches, with a verdict per utility;
- `sections.cross_section(line, ...)` and `sections.long_section(from_node, to_node, ...)`: JSON and SVG.
"""
