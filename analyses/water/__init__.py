"""Water supply operations (issue 14): the hydraulic model of a stored water network and its EPANET export
(`model`), simulation on demand (`hydraulics`), burst isolation and criticality (`isolation`)."""
