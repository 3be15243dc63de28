"""Instant grading: one trainee's submission graded, and its feedback released, as it arrives.

Rule: nothing here grades differently from ``atelier grade`` or releases differently from
``atelier feedback``: the hub service (:mod:`.service`) takes the caller's identity from the hub,
collects with collect's checks, grades in warm grading processes running ``atelier grade``'s
engine (:mod:`.worker`), and releases what the workbook's policy allows (:mod:`.items`).
"""
