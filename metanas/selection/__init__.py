"""Feature and data selection methods."""
