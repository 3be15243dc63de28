"""Authoring: the workbook toolchain, from a new workbook to the gate every workbook must pass.

Rule: authors run these verbs on the checkout (`new`, `translate`, `check`, `catalogue`); nothing
here serves trainees or grades. The workbook format itself is the base's (:mod:`atelier.workbook`).
"""
