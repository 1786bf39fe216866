"""ASGI entry point for uvicorn workers: settings from the environment."""

from copilot.api.app import create_app

app = create_app()
