"""The kiosk tests use the faces fixtures (real photos)."""

from tests.faces.conftest import faces  # noqa: F401 - a fixture
