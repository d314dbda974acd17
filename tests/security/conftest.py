"""Security tests reuse the page fixtures (accounts and devices made through the running app's services) and
the API fixtures (a running app and signed-in callers)."""

from tests.api.conftest import api, sign_in
from tests.pages.conftest import make_account, make_device

__all__ = ['api', 'make_account', 'make_device', 'sign_in']
