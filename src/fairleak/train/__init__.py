"""fairleak.train."""
