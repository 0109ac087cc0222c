"""An independent WebSocket peer for loadd's tests (Python `websockets`), on 127.0.0.1.

usage: ws_peer.py PORT [--cert CERT --key KEY] [--deflate]
  --deflate: agree to permessage-deflate when a client offers it (websockets' own extension)
Paths:
  /echo              echo every message (same type)
  /fragmented        echo every message as fragments of 3 bytes
  /ping              echo, and ping the client every 100 ms
  /close-after/N     echo N messages, then close with 1000
Prints "ready" once listening.
"""
import asyncio
import ssl
import sys

from websockets.asyncio.server import serve


async def handler(ws):
    path = ws.request.path
    count = 0
    pinger = None
    if path == "/ping":
        async def ping_loop():
            while True:
                await asyncio.sleep(0.1)
                try:
                    await ws.ping()
                except Exception:
                    return
        pinger = asyncio.create_task(ping_loop())
    try:
        async for message in ws:
            count += 1
            if path == "/fragmented":
                step = 3
                await ws.send(message[i:i + step] for i in range(0, len(message), step))
            else:
                await ws.send(message)
            if path.startswith("/close-after/") and count >= int(path.rsplit("/", 1)[1]):
                await ws.close(1000, "enough")
                return
    except Exception:
        pass
    finally:
        if pinger:
            pinger.cancel()


async def main():
    port = int(sys.argv[1])
    context = None
    if "--cert" in sys.argv:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[sys.argv.index("--cert") + 1],
                                sys.argv[sys.argv.index("--key") + 1])
    async with serve(handler, "127.0.0.1", port, ssl=context, ping_interval=None,
                     max_size=1 << 20,
                     compression="deflate" if "--deflate" in sys.argv else None):
        print("ready", flush=True)
        await asyncio.Future()


asyncio.run(main())
