"""The HTTP API (FastAPI): `create_app()` in service/api/app.py."""
