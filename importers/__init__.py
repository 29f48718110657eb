"""Importers: each turns one family of sources into rows of the city information model."""
