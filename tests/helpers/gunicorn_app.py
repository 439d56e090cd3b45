"""gunicorn_app.py - fdsup test helper: the smallest WSGI app, for Debian's gunicorn
with sync workers (each waits for connections in select()). gunicorn takes its
listening socket from LISTEN_FDS/LISTEN_PID as systemd hands it over:
    gunicorn --workers 2 --chdir HELPERS gunicorn_app:app"""
import os


def app(environ, start_response):
    body = f"{os.environ.get('FDSUP_WORKER', 'app')}[{os.environ.get('FDSUP_INSTANCE', '0')}] pid {os.getpid()}\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body.encode()]
