"""City health check (城市体检): indicators as data, computed from the model every year.

- `definitions.load(path)`: an indicator set (TOML, checked; errors name file, indicator and field);
- `yearly.run(year)`: every indicator per unit, stored with provenance; `yearly.compare(a, b)`,
  `yearly.problems(year)` (the problem list), `yearly.results(year)`;
- `export.write(year, path)`: the values and the problem list as CSV or XLSX.
The computation kinds are in `kinds`, walking distance along the streets in `walking`.
"""
from .definitions import IndicatorSet, load
from .yearly import compare, problems, results, run

__all__ = ["IndicatorSet", "compare", "load", "problems", "results", "run"]
