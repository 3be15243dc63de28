"""Formgrader as a hub service: started per cohort, serving formgrader and nothing else.

Rule: a cohort whose formgrader cannot start shows a notice (:mod:`.launch`) instead of stopping
the hub; the service answers only formgrader's pages and API (:mod:`.guard`).
"""
