"""What trainees interact with: assessment widgets and workbook tools, on ipywidgets 8.

Rule: every label is translatable, every control has an accessible label, layouts fit a 360 px
screen, and an answer given through a widget with an id persists beside the notebook
(``.atelier-answers.json``) so that it survives restarts, travels with an nbgrader submission and
can be graded by test cells. See ``docs/widgets.md`` for the catalogue.

Names are imported lazily so that ``import atelier.widgets.grading`` in an autograde test cell does
not pay for every tool.
"""

from __future__ import annotations

import importlib

#: public name -> module that defines it
_EXPORTS = {
    "MultipleChoice": "assessment",
    "NumericAnswer": "assessment",
    "ShortText": "assessment",
    "Ordering": "assessment",
    "Matching": "assessment",
    "ICTCFTSelfAssessment": "selfassessment",
    "BandwidthCalculator": "bandwidth",
    "TimelinePlanner": "timeline",
    "HomeLearningBalancer": "schedule",
    "GapMap": "gapmap",
    "RubricScorer": "rubric",
    "ReflectionJournal": "journal",
    "AnswerStore": "store",
    "set_language": "i18n",
    "get_language": "i18n",
    "answer": "grading",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"atelier.widgets.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'atelier.widgets' has no attribute {name!r}")


def __dir__():
    return __all__
