"""A real xuncha-server with the demo district on a free loopback port, for the browser tests
and the field app's benchmark."""

import http.server
import os
import struct
import subprocess
import threading
import zlib

ADMIN_PASSWORD = "admin-password-browser"
# The base map's credit line, set by the operator (a <b> must show as text, not markup).
TILE_ATTRIBUTION = "底图 © 测试测绘院 <b>"


def _png(rgba):
    """A 256x256 PNG of one colour (a tile), made without imaging libraries."""
    row = b"\x00" + bytes(rgba) * 256
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 256, 256, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * 256)) + chunk(b"IEND", b""))


class _Tiles(http.server.BaseHTTPRequestHandler):
    """A tile server on loopback: a pale base map under /base/, clear street-name tiles under
    /labels/ (as 天地图 serves its vec_w and cva_w layers apart)."""
    BASE = _png((242, 239, 233, 255))
    LABELS = _png((0, 0, 0, 0))

    protocol_version = "HTTP/1.1"  # keep-alive: a map's worth of tiles on a few connections

    def do_GET(self):
        body = self.LABELS if self.path.startswith("/labels/") else self.BASE
        try:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "max-age=86400")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the map moved on and dropped the tile

    def log_message(self, *args):
        pass


def _tile_server():
    tiles = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Tiles)
    threading.Thread(target=tiles.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{tiles.server_address[1]}"


def start(server_bin, data_dir):
    """Starts the server on `data_dir` (filled with the demo district); returns the process
    and its base URL once it listens."""
    tiles = _tile_server()
    server = subprocess.Popen(
        [server_bin, "--data", data_dir, "--listen", "127.0.0.1:0", "--demo"],
        env=dict(os.environ, XUNCHA_ADMIN_PASSWORD=ADMIN_PASSWORD,
                 XUNCHA_TILE_ATTRIBUTION=TILE_ATTRIBUTION,
                 XUNCHA_TILE_URL=tiles + "/base/{z}/{x}/{y}.png",
                 XUNCHA_TILE_LABELS_URL=tiles + "/labels/{z}/{x}/{y}.png",
                 # Warnings and errors only: not a line per request in the test output.
                 XUNCHA_LOG_LEVEL="warn"),
        stdout=subprocess.PIPE, text=True)
    for line in server.stdout:
        if "http://" in line:
            # Keep reading its output so the server never blocks on a full pipe.
            threading.Thread(target=server.stdout.read, daemon=True).start()
            return server, line[line.index("http://"):].strip().rstrip("/")
    server.kill()
    raise RuntimeError("server did not start")


def stop(server):
    server.kill()
    server.wait()
