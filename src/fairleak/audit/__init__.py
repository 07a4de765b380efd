"""fairleak.audit."""
