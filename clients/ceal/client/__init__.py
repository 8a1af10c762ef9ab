"""ceal SDK."""
