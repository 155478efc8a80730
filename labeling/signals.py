"""What labeling tells the apps built on it (curation listens; labeling imports none of them).

- `sets_submitted(sender=Assignment, project_id=...)`: a labeler's comment set was stored, or an
  import of comments made elsewhere stored sets; sent once it is committed (a replayed submit of
  a stored set sends nothing).
"""
from django.dispatch import Signal

sets_submitted = Signal()
