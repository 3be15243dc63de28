"""The hardened exchange: trainees' side (:mod:`.trainee`) and the course's side.

The course's side is three pipelines, run by the ``atelier`` verbs and by formgrader's buttons
(:mod:`.course`) alike: :mod:`.release` (outbound copies and each trainee's folders),
:mod:`.collect` (each trainee's latest valid submission into the course) and :mod:`.feedback`
(feedback files into each trainee's own folder).

Rule: identity is the file's owner and the receipt time is the server's; both sides confine
nbgrader's exchange to one trainee's own folders.

Upgrade alias: before 0.2 the trainee-side classes were ``atelier.grading.exchange.<Class>``, as
trainees' ``nbgrader_config.py`` written by 0.1 names them until the hub's next start;
they resolve here, lazily (importing the exchange needs nbgrader). Release 0.3 may drop this.
"""

from __future__ import annotations

_TRAINEE_CLASSES = (
    "AtelierList",
    "AtelierFetchAssignment",
    "AtelierSubmit",
    "AtelierFetchFeedback",
)


def __getattr__(name: str):
    if name in _TRAINEE_CLASSES:
        from atelier.grading.exchange import trainee

        return getattr(trainee, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
