"""Stage models (SPEC 4): the model file format, the presets, and per-customer evaluation."""
