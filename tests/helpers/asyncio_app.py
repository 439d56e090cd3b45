#!/usr/bin/env python3
"""asyncio_app.py - fdsup test helper: a Python asyncio HTTP responder on the listening
socket at fd 3 (systemd's LISTEN_FDS protocol), waiting in epoll as asyncio does on
Linux. It never speaks sd_notify. Usage: asyncio_app.py [STARTUP_MS]"""
import asyncio
import os
import signal
import socket
import sys
import time


async def answer(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    body = f"{os.environ.get('FDSUP_WORKER', 'app')}[{os.environ.get('FDSUP_INSTANCE', '0')}] pid {os.getpid()}\n"
    writer.write(f"HTTP/1.0 200 OK\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
    await writer.drain()
    writer.close()


async def main():
    listener = socket.socket(fileno=3)
    server = await asyncio.start_server(answer, sock=listener)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    time.sleep(int(sys.argv[1]) / 1000 if len(sys.argv) > 1 else 0)
    asyncio.run(main())
