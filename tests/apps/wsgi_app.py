"""A minimal WSGI app for gunicorn (tests/it/first_deploy.rs): 200 "ok" on every path."""


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]
