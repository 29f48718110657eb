"""Services that publish the city information model: the HTTP API, 3D tiles, and the `cim` command."""
