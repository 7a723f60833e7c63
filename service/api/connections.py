"""How `footnote serve` runs uvicorn: its settings, and a deadline for request headers.

uvicorn closes an idle keep-alive connection after 5 s, but it waits forever for a request's
headers: a few hundred clients sending one header byte at a time (slowloris) hold as many
connections open. `HeaderDeadlineProtocol` closes a connection whose next request has not
finished arriving FOOTNOTE_HEADER_TIMEOUT_S after the connection opened or the previous
response ended. A request that is being answered (a long stream too) is never cut.
"""

from __future__ import annotations

import asyncio

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from service.settings import Settings


class HeaderDeadlineProtocol(H11Protocol):
    header_timeout_s: float = 10.0
    _epoch = 0  # which arming of the deadline is current

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def _arm(self) -> None:
        self._epoch += 1
        self.loop.call_later(self.header_timeout_s, self._deadline, self._epoch)

    def _deadline(self, epoch: int) -> None:
        if epoch != self._epoch or self.transport.is_closing():
            return  # a later request re-armed it, or the connection is gone
        if self.cycle is None or self.cycle.response_complete:  # headers still not all here
            self.transport.close()


def server_config(app, settings: Settings, **overrides) -> uvicorn.Config:  # noqa: ANN001
    """uvicorn's configuration for `app`: where to listen, and the slow-client limits."""
    protocol = type("HeaderDeadline", (HeaderDeadlineProtocol,), {"header_timeout_s": settings.header_timeout_s})
    options = {"host": settings.host, "port": settings.port, "log_level": "info", "timeout_graceful_shutdown": 5,
               "timeout_keep_alive": 5, "http": protocol, **overrides}
    return uvicorn.Config(app, **options)
