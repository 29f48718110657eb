"""Drainage operations over the stored gravity networks (rain, sewage, combined).

- `network`: the drainage part of the stored network model, and finding its nodes and segments;
- `tracing`: upstream and downstream traces, the catchment of a manhole, outfalls and pieces without one;
- `misconnections`: rain/sewage misconnections (错接混接), step-ups and laterals against the flow.
"""
