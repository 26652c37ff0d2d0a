"""A real xuncha-server with the demo district on a free loopback port, for the browser tests
and the field app's benchmark."""

import os
import subprocess
import threading

ADMIN_PASSWORD = "admin-password-browser"
# The base map's credit line, set by the operator (a <b> must show as text, not markup).
TILE_ATTRIBUTION = "底图 © 测试测绘院 <b>"


def start(server_bin, data_dir):
    """Starts the server on `data_dir` (filled with the demo district); returns the process
    and its base URL once it listens."""
    server = subprocess.Popen(
        [server_bin, "--data", data_dir, "--listen", "127.0.0.1:0", "--demo"],
        env=dict(os.environ, XUNCHA_ADMIN_PASSWORD=ADMIN_PASSWORD,
                 XUNCHA_TILE_ATTRIBUTION=TILE_ATTRIBUTION),
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
