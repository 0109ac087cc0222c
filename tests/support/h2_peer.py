"""An independent HTTP/2 server (Python `h2`, cleartext, prior knowledge) for the codec tests.

Usage: h2_peer.py [--max-streams N] [--tls CERT KEY ALPN]. Binds 127.0.0.1 on a free port and
prints `ready PORT`. With --tls it speaks TLS and selects ALPN protocol ALPN (`h2`, or
`http/1.1` to agree to nothing an h2-only client offers: the handshake then ends without ALPN).
  GET  /size/N   -> 200 with N bytes (sent as the client's flow-control windows allow)
  POST /upload   -> 200, body "received N"; header x-received: N (bytes of request body seen)
  GET  /scheme   -> 200, body: the request's :scheme
  GET  /stall    -> never answered (the client's timeout has to reset the stream)
  GET  /reset    -> RST_STREAM (INTERNAL_ERROR) instead of a response
  GET  /garbage  -> a DATA frame on stream 0 (a connection error), then the connection closes
  anything else  -> 404
Every response carries x-request-count: requests this server has started, over all connections.
"""
import select
import socket
import ssl
import sys
import threading

import h2.config
import h2.connection
import h2.events
import h2.settings

lock = threading.Lock()
requests_seen = 0


def serve(sock, max_streams):
    global requests_seen
    config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
    conn = h2.connection.H2Connection(config=config)
    conn.local_settings = h2.settings.Settings(
        client=False,
        initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_streams},
    )
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    heads = {}
    bodies = {}
    pending = {}  # stream -> bytes left to send

    def respond(stream, status, body, extra=()):
        with lock:
            count = requests_seen
        headers = [(":status", str(status)), ("content-length", str(len(body))),
                   ("x-request-count", str(count))] + list(extra)
        conn.send_headers(stream, headers, end_stream=not body)
        if body:
            pending[stream] = body

    def flush():
        for stream in list(pending):
            body = pending[stream]
            while body:
                window = min(conn.local_flow_control_window(stream), conn.max_outbound_frame_size)
                if window <= 0:
                    break
                chunk, body = body[:window], body[window:]
                conn.send_data(stream, chunk, end_stream=not body)
            if body:
                pending[stream] = body
            else:
                del pending[stream]

    while True:
        # A TLS socket may hold decrypted bytes that select cannot see.
        buffered = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
        readable = buffered or select.select([sock], [], [], 30)[0]
        if not readable:
            return
        data = sock.recv(65536)
        if not data:
            return
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                with lock:
                    requests_seen += 1
                heads[event.stream_id] = dict(event.headers)
                bodies[event.stream_id] = 0
            elif isinstance(event, h2.events.DataReceived):
                bodies[event.stream_id] = bodies.get(event.stream_id, 0) + len(event.data)
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                head = heads.pop(event.stream_id, {})
                seen = bodies.pop(event.stream_id, 0)
                path = head.get(":path", "")
                method = head.get(":method", "")
                if method == "GET" and path.startswith("/size/"):
                    respond(event.stream_id, 200, b"x" * int(path[6:]))
                elif path == "/scheme":
                    respond(event.stream_id, 200, head.get(":scheme", "").encode())
                elif path == "/stall":
                    pass
                elif path == "/reset":
                    conn.reset_stream(event.stream_id, error_code=2)
                elif path == "/garbage":
                    sock.sendall(conn.data_to_send() + b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")
                    sock.close()
                    return
                elif method == "POST" and path == "/upload":
                    respond(event.stream_id, 200, b"received %d" % seen, [("x-received", str(seen))])
                else:
                    respond(event.stream_id, 404, b"")
            elif isinstance(event, h2.events.ConnectionTerminated):
                sock.sendall(conn.data_to_send())
                return
        flush()
        out = conn.data_to_send()
        if out:
            sock.sendall(out)


def serve_tls(raw, max_streams, context):
    try:
        sock = context.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        raw.close()
        return
    serve(sock, max_streams)


def main():
    max_streams = 100
    context = None
    args = sys.argv[1:]
    while args:
        if args[0] == "--max-streams":
            max_streams = int(args[1])
            args = args[2:]
        elif args[0] == "--tls":
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(args[1], args[2])
            context.set_alpn_protocols([args[3]])
            args = args[4:]
        else:
            sys.exit("unknown argument %s" % args[0])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print("ready %d" % listener.getsockname()[1], flush=True)
    while True:
        sock, _ = listener.accept()
        if context is None:
            target, extra = serve, ()
        else:
            target, extra = serve_tls, (context,)
        threading.Thread(target=target, args=(sock, max_streams) + extra, daemon=True).start()


if __name__ == "__main__":
    main()
