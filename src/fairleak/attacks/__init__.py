"""fairleak.attacks."""
