"""pytest fixtures for plugin authors (loaded automatically where nstcore is installed).

``nstcore_plugins``: the plugin manager as a user's ``nstcore`` would see it (entry points
autoloaded, fresh for the test), to check that your distribution's entry point is found.
"""
from __future__ import annotations

import pytest


@pytest.fixture
def nstcore_plugins(monkeypatch):
    from nstcore import plugins

    monkeypatch.setenv(plugins.NO_AUTOLOAD_ENV, "0")
    monkeypatch.delenv(plugins.DISABLE_ENV, raising=False)
    plugins.reset_plugin_manager()
    yield plugins.get_plugin_manager()
    plugins.reset_plugin_manager()
