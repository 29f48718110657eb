"""Water supply operations (issue 14): the hydraulic model of a stored water network and its EPANET export
(`model`), simulation on demand (`hydraulics`), burst isolation (`isolation`), criticality of every pipe
(`criticality`) and the old-mains renewal programme (`renewal`)."""
