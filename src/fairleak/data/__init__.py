"""fairleak.data."""
