"""Assessment: releasing workbooks as nbgrader assignments, collecting, grading, feedback, export.

Rule: nbgrader's own pipeline does the grading; Atelier configures it per cohort, hardens the
exchange, and never overwrites a facilitator's manual grade or comment.
"""
