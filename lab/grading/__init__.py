"""Grading of LANA lab exercises: run an exercise's pytest grader against a submission,
score it, and write a human report, JUnit XML and a JSON score.

Parts: nodes (reach a running lab's guests and Mininet hosts), reset (bring a guest's LANA
state back to nothing between submissions), traffic (send an exact frame corpus from a
Mininet host), kbuild (build a student's block on the host), variants (per-student
parameters), plugin (the pytest side), engine and report (the `lanalab grade` side).
"""
