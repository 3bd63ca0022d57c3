"""A TCP proxy on 127.0.0.1 that holds every chunk of bytes for a fixed delay in each direction:
the database as if it stood in another rack, for benchmarks.asyncio_ops's `--delay-ms`.

    python -m benchmarks.delay_proxy --to HOST:PORT --delay-ms 1 [--seconds 1800]

Prints the port it listens on (one line), then forwards until `--seconds` have passed or its
standard input closes (the benchmark that started it has ended). Order is kept in each direction:
a chunk leaves no earlier than `delay` after it arrived, and after the chunk before it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from contextlib import suppress

CHUNK = 65536


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy `reader` to `writer`, each chunk `delay` seconds after it was read."""
    held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def release() -> None:
        while True:
            due, data = await held.get()
            if not data:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    releasing = asyncio.create_task(release())
    try:
        while data := await reader.read(CHUNK):
            held.put_nowait((time.monotonic() + delay, data))
    except ConnectionError:
        pass
    finally:
        held.put_nowait((0.0, b""))
        await releasing


async def serve(host: str, port: int, delay: float, seconds: float) -> None:
    """Listen on 127.0.0.1 and forward each connection to `host:port`, for at most `seconds`."""

    async def forward(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(host, port)
        except OSError:
            client_writer.close()  # the client sees the connection refused, rather than hang
            return
        with suppress(asyncio.CancelledError):  # the proxy is stopping
            await asyncio.gather(
                pump(client_reader, server_writer, delay),
                pump(server_reader, client_writer, delay),
                return_exceptions=True,
            )

    server = await asyncio.start_server(forward, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    parent_gone = asyncio.Event()  # our standard input (the parent's pipe) is readable: at its end
    asyncio.get_running_loop().add_reader(sys.stdin.fileno(), parent_gone.set)
    async with server:
        with suppress(TimeoutError):
            await asyncio.wait_for(parent_gone.wait(), timeout=seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--to", required=True, help="HOST:PORT of the database")
    parser.add_argument("--delay-ms", type=float, default=1.0, help="delay added in each direction")
    parser.add_argument("--seconds", type=float, default=1800.0, help="stop after this long in any case")
    args = parser.parse_args()
    host, _, port = args.to.rpartition(":")
    asyncio.run(serve(host, int(port), args.delay_ms / 1000, args.seconds))


if __name__ == "__main__":
    main()
