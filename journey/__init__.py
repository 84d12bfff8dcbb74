"""journey: customer-journey analytics. Shared: canonical event, settings, errors, log, CLI."""

__version__ = "0.1.0"
