"""Serving: the hub's configuration, the installer, accounts and cohorts from a roster.

Rule: ``jupyterhub_config.py`` stays thin; everything it sets is computed by pure functions here
from the validated settings, so that configuration can be tested on a fresh
``traitlets.config.Config()``.
"""
