"""Trainees' servers: spawning, limits, quota, workbook delivery, and the pre-warmed template.

Rule: a trainee's server runs as the trainee's account, inside limits root set first.
"""
