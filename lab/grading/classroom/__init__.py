"""Grading a whole class: `lanalab grade N --class DIR` (issue 15).

roster (who is in the class), batch (K labs, one grader subprocess per submission,
resumable state), gradebook (CSV and JSON), html (the summary page), progress (the
running line), duplicates (identical submissions).
"""
