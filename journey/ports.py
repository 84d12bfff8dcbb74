"""Refuse early, in one line, to serve on an address that another process already holds."""

from __future__ import annotations

import errno
import socket

from journey.errors import ConfigError


class PortInUseError(ConfigError):
    """The address a serving command was asked to listen on is taken (or not ours to bind)."""


def check_free(host: str, port: int) -> None:
    """Bind host:port once and let it go; PortInUseError if that fails.

    Checked before anything starts (processor child, demo load) so that a taken port ends the
    command at once instead of after uvicorn has logged a traceback or, in the demo, never.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # uvicorn binds with SO_REUSEADDR too: a port in TIME_WAIT is free, a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"({exc.strerror})"
            raise PortInUseError(f"cannot listen on {host}:{port}: the port {reason}; "
                                 "choose another with --port or JOURNEY_PORT") from exc
