"""Main file for the API tests' simulated app (see `api` in conftest.py)."""

from tests.api.api_app import build_api_app

build_api_app()
