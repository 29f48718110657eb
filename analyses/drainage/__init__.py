"""Drainage operations over the stored gravity networks (rain, sewage, combined).

- `network`: the drainage part of the stored network model, and finding its nodes and segments;
- `tracing`: upstream and downstream traces, the catchment of a manhole, outfalls and pieces without one;
- `misconnections`: rain/sewage misconnections (错接混接), step-ups and laterals against the flow;
- `swmm_export`, `swmm_run`: a runnable SWMM model of a stored network, and running it (pyswmm);
- `storm`: design storms (Chicago hyetograph) run over the network, results and flooding points stored;
- `inspection`: CCTV condition grading (CJJ 181-2012) and the inspection campaign's progress.
"""
