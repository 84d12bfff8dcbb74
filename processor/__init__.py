"""The stream processor: the pure journey core (stitching, sessions, stages) and its loop."""
