"""fairleak.report."""
