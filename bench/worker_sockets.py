"""Whether uvicorn's own `--workers` supervisor could give each worker its own listening socket.

`web/workers.py` exists for one reason: every worker gets its own SO_REUSEPORT socket,
so the kernel spreads a gateway's burst of keep-alive connections over the workers
instead of leaving them with whichever worker accepted first. Not a CPU matter, so
nothing is timed: this reads the installed uvicorn's source (`Config.bind_socket`, the
`Multiprocess` supervisor) for the two facts that decide it, so the answer follows
the uvicorn in uv.lock rather than a reading of an older one.
"""

import inspect
from dataclasses import dataclass

import uvicorn
from uvicorn.config import Config
from uvicorn.supervisors.multiprocess import Multiprocess


@dataclass(frozen=True)
class UvicornWorkers:
    """What the installed uvicorn does with sockets when it runs workers."""

    version: str
    # Config.bind_socket, the one socket `uvicorn.run(workers=N)` binds, sets SO_REUSEPORT.
    binds_reuseport: bool
    # Multiprocess hands every worker process the same list of sockets.
    shares_sockets: bool


def uvicorn_workers() -> UvicornWorkers:
    """Read the two facts off the installed uvicorn."""
    bind = inspect.getsource(Config.bind_socket)
    supervisor = inspect.getsource(Multiprocess)
    return UvicornWorkers(
        version=uvicorn.__version__,
        binds_reuseport="SO_REUSEPORT" in bind,
        shares_sockets="Process(self.config, self.sockets)" in supervisor,
    )
