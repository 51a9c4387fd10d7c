"""The records of a run, without pytest or torch: what ``python -m pytest_edgeenergy compare``
and ``history`` need, and what the plugin writes.

One module per job: :mod:`.results` (the per-case record), :mod:`.baseline` (the baseline
file, read and written), :mod:`.runs` (saved runs), :mod:`.thresholds` (metrics and limits),
:mod:`.selection` (which entries a run could have produced), :mod:`.tracking` (a case and a
session against the baseline), :mod:`.report` (the tables and report files), :mod:`.ci` (CI
files), :mod:`.compare` and :mod:`.history` (the two commands), :mod:`.format` (how figures are
written) and :mod:`.written` (what a writer did, as data). None of them imports pytest or
torch (tests/unit/test_records_imports.py checks it).
"""
