"""Hardware package (public API filled in below)."""
