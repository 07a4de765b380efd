"""fairleak.fairness."""
