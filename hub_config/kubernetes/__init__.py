"""Kubernetes: the same configuration as one machine, rendered as chart values and manifests.

Rule: values and manifests come from the same settings and layers as one machine; the data files
beside these modules (``values.base.yaml``, ``z2jh/``) are read, never edited by code.
"""
