"""Upgrade alias: the course-side exchange classes' path before 0.2 (now :mod:`.exchange.course`).

Each course's ``nbgrader_config.py`` written by 0.1 names
``atelier.grading.course_exchange.<Class>``; every verb and the hub's start write the file again
with the new path, and until then it loads through this module. Release 0.3 may drop it.
"""

from atelier.grading.exchange.course import (  # noqa: F401
    AtelierCollect,
    AtelierCourseList,
    AtelierReleaseAssignment,
    AtelierReleaseFeedback,
)
