"""The collector: Segment HTTP Tracking API requests in, canonical events appended to the log."""
