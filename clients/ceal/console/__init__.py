"""The labelling console: a small ASGI app (Starlette on uvicorn) over the SDK's `AsyncClient`.

Annotators sign in with their bearer token, take the worklist the service ranks for them, draw or correct
masks over the image with its uncertainty, and submit; operators read the pool's dashboard. The pages are
plain HTML/CSS/JS modules served from this package (`static/`): no CDN, no build step, nothing from outside.
Needs the `console` extra: `pip install 'ceal[console]'`; run it with `ceal console --server HOST:PORT`.
"""

from ceal.console.app import create_app

__all__ = ["create_app"]
