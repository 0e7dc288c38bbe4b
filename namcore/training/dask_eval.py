"""Scoring a run on Dask: a large generated test set, one task per chunk, on any cluster.

Each chunk of a split is one Dask task that generates its own samples (from a seed
derived from the task, split and chunk index, so nothing but a few integers and the
weights travels to the workers), runs namcore's NumPy model on them and returns
per-length counts of right and total samples. The counts are summed on the client.
One task per chunk keeps the graph small: running the model on Dask arrays instead
would make tens of tasks per time step of the recurrence.

The scores depend on ``size`` and ``chunk`` (which samples are drawn), never on the
scheduler or the number of workers.

A scheduler given by address is checked before anything is computed: a malformed
address is refused at once (:func:`check_scheduler`), and an unreachable one within
:data:`CONNECT_TIMEOUT` seconds, instead of ``dask.distributed``'s 30 s of retries.
"""

from __future__ import annotations

import importlib.util
import socket
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from namcore import tasks

from .data import split_task
from .errors import TrainingError
from .scoring import Counts, length_counts, merge_counts

__all__ = [
    "CONNECT_TIMEOUT",
    "check_scheduler",
    "chunk_seed",
    "connect",
    "score_chunk",
    "score_splits",
]

#: Seconds to wait for a scheduler given by address to answer before giving up.
CONNECT_TIMEOUT = 5.0

# Protocols whose addresses are HOST:PORT over TCP, which can be probed with a socket.
_TCP_PROTOCOLS = ("tcp", "tls", "ws", "wss")
_EXAMPLE = "tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786"


def check_scheduler(address: str, option: str = "scheduler") -> tuple[str, str, int] | None:
    """Check a ``dask.distributed`` scheduler address without connecting to it.

    Returns ``(protocol, host, port)`` of a TCP-based address (``tcp://``,
    ``tls://``, ``ws://``, ``wss://``, or ``HOST:PORT``, which means ``tcp://``), and
    ``None`` for another protocol ``dask.distributed`` knows (``inproc://``, ``ucx://``).

    Raises
    ------
    TrainingError
        ``dask.distributed`` is not installed (the message names the extra), or the
        address is malformed: an unknown protocol, no port, a port that is not a
        number in 1-65535, or no host.

    Examples
    --------
    >>> from namcore.training.dask_eval import check_scheduler
    >>> check_scheduler("tcp://10.0.0.5:8786")
    ('tcp', '10.0.0.5', 8786)
    >>> check_scheduler("10.0.0.5")
    Traceback (most recent call last):
    ...
    namcore.training.errors.TrainingError: scheduler '10.0.0.5' is not an address (missing \
port number in address '10.0.0.5'); expected tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786
    """
    if importlib.util.find_spec("distributed") is None:
        raise TrainingError(
            f"{option} needs dask.distributed, which is not installed: pip install 'namcore[dask]'"
        )
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port
    from distributed.comm.registry import backends as protocols

    if not isinstance(address, str) or not address.strip():
        raise TrainingError(f"{option} must be an address, {_EXAMPLE}; got {address!r}")
    try:
        protocol, location = parse_address(address.strip())
    except ValueError as error:
        raise TrainingError(
            f"{option} {address!r} is not an address ({error}); expected {_EXAMPLE}"
        ) from None
    if protocol not in protocols:
        raise TrainingError(
            f"{option} {address!r} has the unknown protocol {protocol!r}; expected "
            f"{_EXAMPLE} (or {', '.join(sorted(protocols))})"
        )
    if protocol not in _TCP_PROTOCOLS:
        return None
    try:
        host, port = parse_host_port(location)
    except ValueError as error:
        raise TrainingError(
            f"{option} {address!r} is not an address ({error}); expected {_EXAMPLE}"
        ) from None
    if not host or not 1 <= int(port) <= 65535:
        raise TrainingError(
            f"{option} {address!r} needs a host and a port in 1-65535; expected {_EXAMPLE}"
        )
    return protocol, str(host), int(port)


def _not_a_scheduler(address: str, what: str) -> TrainingError:
    return TrainingError(
        f"{address} is not a Dask scheduler: it {what} (a scheduler listens on port 8786 "
        "unless told otherwise; 8787 is its dashboard)"
    )


def _probe(address: str, protocol: str, host: str, port: int) -> None:
    """``TrainingError`` within :data:`CONNECT_TIMEOUT` unless a scheduler may be there.

    ``dask.distributed`` retries a refused connection until its own timeout (30 s by
    default) and, over ``tcp://``, waits without end for the handshake of a server
    that is not a scheduler (a dashboard, a web server). A plain socket says at once
    that nothing listens; over ``tcp://`` a scheduler speaks first, a message whose
    first 8 bytes are its (small) length, so a silent or garbled peer is refused too.
    """
    try:
        sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    except OSError as error:
        reason = (
            f"no answer within {CONNECT_TIMEOUT:g} s"
            if isinstance(error, TimeoutError)
            else error.strerror or str(error)
        )
        raise TrainingError(
            f"cannot reach the Dask scheduler at {address}: {reason} "
            "(is it running, and is the address right?)"
        ) from None
    with sock:
        if protocol != "tcp":  # TLS and websockets: the client speaks first
            return
        header = b""
        try:
            while len(header) < 8:
                part = sock.recv(8 - len(header))
                if not part:
                    raise _not_a_scheduler(address, "closed the connection without a word")
                header += part
        except TimeoutError:
            raise _not_a_scheduler(address, f"said nothing for {CONNECT_TIMEOUT:g} s") from None
        except OSError as error:
            raise _not_a_scheduler(address, f"dropped the connection ({error})") from None
    if not 0 < int.from_bytes(header, "little") < 1 << 24:
        raise _not_a_scheduler(address, "answered in something other than Dask's protocol")


def connect(address: str) -> Any:
    """A ``Client`` of the scheduler at ``address``, or ``TrainingError`` within seconds."""
    from distributed import Client

    endpoint = check_scheduler(address)
    if endpoint is not None:
        _probe(address, *endpoint)
    try:
        return Client(address, timeout=CONNECT_TIMEOUT)
    except Exception as error:  # timed out, a bad inproc:// path, a peer that is not Dask
        message = str(error).splitlines()[0] if str(error) else ""
        raise TrainingError(
            f"cannot connect to the Dask scheduler at {address}: {type(error).__name__}: {message}"
        ) from None


def chunk_seed(task: str, split: str, index: int) -> int:
    """Seed of chunk ``index`` of ``split``: the same on every machine."""
    return zlib.crc32(f"eval:{task}:{split}:chunk{index}".encode())


def score_chunk(
    params: Mapping[str, np.ndarray], config: Any, task: str, split: str, count: int, index: int
) -> Counts:
    """Generate chunk ``index`` (``count`` samples) of ``split`` and score the model on it.

    Returns ``{length: (right, total)}``.
    """
    from namcore.models import forward

    low, high = tasks.splits(task)[split]
    batch = split_task(task, split).generate(count, low, high, seed=chunk_seed(task, split, index))
    predictions = np.argmax(forward(params, batch.inputs, batch.mask, config=config), axis=-1)
    return length_counts(predictions, batch)


def score_splits(
    task: str,
    splits: list[str],
    params: Mapping[str, np.ndarray],
    config: Any,
    *,
    size: int,
    chunk: int,
    scheduler: Any = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Score every split on ``size`` generated samples, in chunks of ``chunk``, with Dask.

    Parameters
    ----------
    scheduler : str or distributed.Client, optional
        ``None``: Dask's local threaded scheduler. A string: the address of a
        ``dask.distributed`` scheduler (``"tcp://host:8786"``) to connect to. A
        ``Client``: use it as it is.
    progress : bool
        Show Dask's own progress bar (``dask.diagnostics.ProgressBar`` locally,
        ``distributed.progress`` on a cluster).
    """
    import dask

    weights = dask.delayed(dict(params), pure=True, traverse=False)
    jobs: list[tuple[str, Any]] = []
    for split in splits:
        for index, start in enumerate(range(0, size, chunk)):
            count = min(chunk, size - start)
            jobs.append(
                (
                    split,
                    dask.delayed(score_chunk, pure=True)(
                        weights, config, task, split, count, index
                    ),
                )
            )
    parts = _compute([job for _, job in jobs], scheduler, progress)
    return {
        split: merge_counts([p for (name, _), p in zip(jobs, parts, strict=True) if name == split])
        for split in splits
    }


def _compute(jobs: list[Any], scheduler: Any, progress: bool) -> list[Counts]:
    import dask

    if scheduler is None:
        if not progress:
            return list(dask.compute(*jobs, scheduler="threads"))
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return list(dask.compute(*jobs, scheduler="threads"))
    from distributed import Client
    from distributed import progress as show_progress

    client = scheduler if isinstance(scheduler, Client) else connect(scheduler)
    try:
        futures = client.compute(jobs)
        if progress:
            show_progress(futures)
            print()
        return list(client.gather(futures))
    finally:
        if client is not scheduler:
            client.close()
