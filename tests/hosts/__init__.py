"""Host compatibility: the middleware inside other frameworks' stacks (Litestar, Bottle,
WebOb, werkzeug, Starlette layers) and under real servers on 127.0.0.1."""
