"""ceal."""
