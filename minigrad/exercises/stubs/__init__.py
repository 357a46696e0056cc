"""The files ``minigrad exercises start NAME`` copies into a working folder, one per exercise.

Each is complete but for the spot the student fills, which raises ``NotImplementedError``.
"""
