"""Atelier: hands-on training of teachers in teaching with ICT, on Jupyter.

The package's subpackages are the rooms of the repository: ``atelier.hub_config`` (serving),
``atelier.grading`` (assessment), ``atelier.widgets`` (what trainees interact with). This core
holds only what every room shares: the command line, the settings and their schema, and the
workbook format.
"""

__version__ = "0.1.0"
