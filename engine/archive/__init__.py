"""The household archive (户档): households and the residents of each.

* :mod:`engine.archive.load` reads a CSV or YAML file into frozen specs and checks every row
  against the org chart; one :class:`~engine.archive.load.ArchiveInvalid` lists every problem
  with its ``file:line`` (and column), so a bad file is never half-imported.
* :mod:`engine.archive.store` writes the specs in the caller's transaction, idempotently:
  households and residents are added or updated, residents a household's file no longer lists
  are deactivated, nothing is deleted.
* :mod:`engine.archive.mask` is how ID numbers, phones and names are shown where the full value
  is not allowed.
* :mod:`engine.archive.sample` generates the sample township's archive (synthetic persons).
"""
