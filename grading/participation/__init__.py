"""Participation, as a programme reports it: who took part, from where, and how much.

Rule: :mod:`.stats` computes every number from two plain inputs (the cohort's trainees as the
roster describes them, and their saved-answer events) and knows nothing of files; :mod:`.events`
reads the events from the answers files without trusting what a trainee can change;
:mod:`.exports` writes the CSV and the one-page PDF. The dashboard's Participation section and
``atelier report participation`` show the same :class:`.stats.Participation`.
"""
