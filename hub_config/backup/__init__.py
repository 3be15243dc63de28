"""Backups and databases: checksummed archives, restore, and moving to PostgreSQL.

Rule: a backup is one archive listing every file with its checksum, consistent while the hub runs
(:mod:`.backup`); databases are copied through their own tools, never as files.
"""
