"""People: roster import, logins, and bringing a running hub up to date after an import.

Rule: the whole roster file is checked before anything changes; the roster store and Unix
accounts are the base's (:mod:`atelier.roster`, :mod:`atelier.accounts`).
"""
