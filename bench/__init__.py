"""Benchmarks: each module bench/NAME.py compares one of our commands with the tool a user would otherwise pick.

A benchmark module defines `run(scale: float, work: Path) -> dict` returning the figures of one run
(ours, the anchor's, and their ratio); the runner writes them to bench/results/NAME.json.
"""
