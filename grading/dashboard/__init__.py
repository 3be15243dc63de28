"""The facilitators' dashboard: live progress of a cohort, from the gradebook, exchange and homes.

Rule: facilitators only, their cohorts only; every value reaches the page through a template.
"""
