"""What happened to one trainee's submission of one assignment: the unit every part reports.

Rule: an :class:`Outcome` is plain data (it crosses the grading processes' pipes as JSON), made by
the converter, recorded by the journal, shown by the command's progress bar and final table.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Outcome:
    """What happened to one trainee's submission of one assignment."""

    student: str
    assignment: str
    status: str = "graded"  # graded | failed | timed out | skipped
    reason: str = ""
    seconds: float = 0.0
    notebooks: list[str] = field(default_factory=list)
    #: CPU seconds its sandboxed runs used (the trainee's code and the fork server's watch).
    cpu: float = 0.0
