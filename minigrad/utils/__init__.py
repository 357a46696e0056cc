"""Small helpers that need only the standard library and NumPy (progress bars)."""
