"""Plain numpy/torch helpers (no Qt): image I/O, colour, pyramids, metrics, tiling."""
