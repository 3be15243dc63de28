"""What trainees interact with: assessment widgets and workbook tools, in pure Python on ipywidgets 8.

Rule: every label is translatable, every control has an accessible label, layouts fit a 360 px screen,
and an answer given through a widget persists beside the notebook so that nbgrader can grade it.
"""
