"""The public face: workbooks marked as apps served by Voila, and the static offline library.

Rule: what the public sees is a student version of a workbook (no solutions, no hidden tests),
served without a login; nothing here reads the roster, the exchange or a gradebook.
"""
