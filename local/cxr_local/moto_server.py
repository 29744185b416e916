"""moto's server, patched (moto_patches) and served with keep-alive: `python -m cxr_local.moto_server -H HOST -p PORT`.

moto's own `moto_server` runs Werkzeug's development server, which closes the connection after every response:
each AWS call paid a TCP connect and a new server thread (a fifth of moto's CPU under load). cheroot serves the
same WSGI application with persistent connections and a thread pool. With CXR_MOTO_ACCESS_KEY_ID and
CXR_MOTO_SECRET_ACCESS_KEY in its environment, only requests SigV4-signed with that key pair get through
(sigv4_guard).
"""
import argparse
import os
import signal
import sys
import threading

from cheroot import wsgi

from cxr_local.moto_patches import install
from cxr_local.sigv4_guard import ACCESS_KEY_ENV, SECRET_KEY_ENV, Identity, SigV4Guard

# long polls (ReceiveMessage, up to 20 s) each hold a thread; idle keep-alive connections hold none
THREADS = 64


class _ClosingGateway(wsgi.Gateway_10):
    """cheroot reads an unread request body to its end to keep the connection (into memory, whole): an answer
    with `Connection: close` (the guard's refusals) closes it instead, so a refused body is never read."""

    def start_response(self, status, headers, exc_info=None):
        if any(name.lower() == "connection" and value.lower() == "close" for name, value in headers):
            self.req.close_connection = True
        return super().start_response(status, headers, exc_info)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cxr_local.moto_server", description=__doc__)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    install()
    # requests differ 100-fold in cost (a GetItem vs an 8-item transaction); with the default 5 ms GIL switch
    # interval a cheap call waits out a costly one in another thread
    sys.setswitchinterval(0.0005)
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app = DomainDispatcherApplication(create_backend_app)
    if os.environ.get(ACCESS_KEY_ENV):  # the local stack always sets one: nothing unsigned reaches moto
        app = SigV4Guard(app, Identity(os.environ[ACCESS_KEY_ENV], os.environ[SECRET_KEY_ENV]))
    server = wsgi.Server((args.host, args.port), app,
                         numthreads=THREADS, request_queue_size=256, timeout=60, server_name="moto")
    server.gateway = _ClosingGateway
    server.keep_alive_conn_limit = None  # cheroot closes connections beyond 10 idle ones; every process pools some
    signal.signal(signal.SIGTERM, _exit_serve_loop)
    try:
        server.start()  # a port already taken raises here, and the process exits non-zero
    except (KeyboardInterrupt, SystemExit):
        # moto keeps nothing worth flushing; give requests in hand a moment, but a 20 s long poll must not
        # hold the exit (cheroot's stop waits for it), and cheroot's helper threads are not daemons
        stopper = threading.Thread(target=server.stop, daemon=True)
        stopper.start()
        stopper.join(2)
        os._exit(0)


def _exit_serve_loop(*_) -> None:
    raise SystemExit(0)  # raised in the main thread, inside the serve loop; stopping there would deadlock


if __name__ == "__main__":
    sys.exit(main())
