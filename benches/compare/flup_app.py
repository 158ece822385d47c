"""hello and echo (size=N, POST echo) on Python flup, for benches/compare.sh.
Usage: python3 flup_app.py hello|echo; the listening socket is on fd 0."""
import sys

from flup.server.fcgi import WSGIServer

ECHO = len(sys.argv) > 1 and sys.argv[1] == "echo"
PIECE = bytes(97 + i % 26 for i in range(65520))


def pattern(n):
    while n > 0:
        yield PIECE[: min(n, len(PIECE))]
        n -= len(PIECE)


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    if not ECHO:
        return [b"Hello, World!\n"]
    query = dict(kv.split("=", 1) for kv in environ.get("QUERY_STRING", "").split("&") if "=" in kv)
    if "size" in query:
        return pattern(int(query["size"]))
    if environ["REQUEST_METHOD"] in ("POST", "PUT"):
        return [environ["wsgi.input"].read()]
    return [b""]


WSGIServer(app).run()
