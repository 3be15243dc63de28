"""Atelier: hands-on training of teachers in teaching with ICT, on Jupyter.

The package's subpackages are the rooms of the repository: ``atelier.widgets`` (what trainees
interact with), ``atelier.authoring`` (the workbook toolchain), ``atelier.public`` (public apps
and the static library), ``atelier.grading`` (assessment and facilitators' tools) and
``atelier.hub_config`` (serving). This core holds only what every room shares, and imports no
room: the command line, the settings and their schema, the workbook format, the roster, accounts
and databases (see docs/architecture.md and pyproject.toml's ``[tool.importlinter]``).
"""

__version__ = "0.1.0"
