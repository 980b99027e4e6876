"""The ASGI application object for uvicorn workers: ``fairslot.web.asgi:app``."""

from fairslot.web.app import create_app

app = create_app()
