"""Running the hub: the installer, the start command, the layered configuration, the proxy.

Rule: configuration is computed by pure functions of the validated settings (:mod:`.config`);
the installer is an ordered list of idempotent steps (:mod:`.installapp`).
"""
