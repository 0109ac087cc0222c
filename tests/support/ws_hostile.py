"""A hostile WebSocket server for loadd's tests, on 127.0.0.1: it answers the upgrade
correctly, then misbehaves by path. Plain asyncio, no WebSocket library, so it can break the
protocol on purpose.

usage: ws_hostile.py PORT
Paths:
  /big          announces a 100 MiB text frame, sends 1 KiB of it, then holds the socket
  /pings        floods pings (125-byte payloads) as fast as the socket takes them
  /fragments    starts a text message and sends continuation fragments forever (64 KiB each)
  /big-message  one 4 MiB text message in 64 KiB fragments, then holds the socket
  /slowloris    after a valid first frame, trickles one byte of the next every 100 ms
  /deflate-bomb     agrees to permessage-deflate (when offered), then sends one compressed
                    message that inflates to 64 MiB of zeros
  /deflate-garbage  agrees to permessage-deflate, then sends a "compressed" message of noise
Prints "ready" once listening.
"""
import asyncio
import base64
import hashlib
import struct
import sys
import zlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def deflated(data):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4]  # RFC 7692: the 00 00 ff ff tail is not sent


def frame(opcode, payload, fin=True, announced=None, rsv1=False):
    n = len(payload) if announced is None else announced
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack(">H", n)
    else:
        head += bytes([127]) + struct.pack(">Q", n)
    return head + payload


async def handle(reader, writer):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        key = next(l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        offered = any(l.lower().startswith("sec-websocket-extensions:") and "permessage-deflate" in l
                      for l in lines)
        ext = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if offered and path.startswith("/deflate") else ""
        writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n" % (accept, ext)).encode())
        await writer.drain()
        if path == "/big":
            writer.write(frame(0x1, b"x" * 1024, announced=100 << 20))
            await writer.drain()
            await reader.read()  # hold until the client goes
        elif path == "/big-message":
            chunk = b"m" * 65536
            writer.write(frame(0x1, chunk, fin=False))
            for i in range(1, 64):
                writer.write(frame(0x0, chunk, fin=(i == 63)))
                await writer.drain()
            await reader.read()
        elif path == "/pings":
            ping = frame(0x9, b"p" * 125)
            while True:
                writer.write(ping * 64)
                await writer.drain()
        elif path == "/fragments":
            chunk = b"f" * 65536
            writer.write(frame(0x1, chunk, fin=False))
            while True:
                writer.write(frame(0x0, chunk, fin=False))
                await writer.drain()
        elif path == "/deflate-bomb":
            writer.write(frame(0x1, deflated(b"\0" * (64 << 20)), rsv1=True))
            await writer.drain()
            await reader.read()
        elif path == "/deflate-garbage":
            writer.write(frame(0x1, bytes(range(7, 250)) * 4, rsv1=True))
            await writer.drain()
            await reader.read()
        elif path == "/slowloris":
            writer.write(frame(0x1, b"hello"))
            await writer.drain()
            for b in frame(0x1, b"never finished"):
                writer.write(bytes([b]))
                await writer.drain()
                await asyncio.sleep(0.1)
            await reader.read()
    except Exception:
        pass
    finally:
        writer.close()


async def main():
    port = int(sys.argv[1])
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
