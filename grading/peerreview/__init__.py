"""Peer review of reflections: trainees of a cohort score each other's reflection with its rubric.

Rule: ``atelier peer`` (:mod:`.peerapp`) opens, follows, reassigns and closes a review; the
``atelier-peer`` hub service (:mod:`.service`) serves the review pages, each person's own and no
one else's; the record (:mod:`.state`) lives in the hub's state directory; who reviews whom and
the peer score are pure functions (:mod:`.assign`); grades reach the gradebook as the grader
account (:mod:`.marks`).
"""
