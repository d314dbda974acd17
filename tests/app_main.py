"""Main file for NiceGUI's user simulation (see the `user` fixture in conftest.py)."""

from tests.support import build_test_app

build_test_app()
