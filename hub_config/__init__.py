"""Serving: running the hub, people, trainees' servers, Kubernetes, backups and databases.

Rule: ``jupyterhub_config.py`` stays thin; everything it sets is computed by pure functions here
from the validated settings, so that configuration can be tested on a fresh
``traitlets.config.Config()``.
"""
