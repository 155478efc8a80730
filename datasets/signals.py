"""What the datasets app tells the apps built on it (labeling listens; datasets imports none of them).

- `images_added(sender=ImportJob, import_job_id=...)`: an import finished (done, failed or
  interrupted) having stored photos; sent once its state is committed. The photos are the
  import's own (`Image.import_job`), so a resumed import that finishes later sends it again for the
  same job: receivers add what is not there yet.
- `images_changed(sender=Image, image_ids=[...])`: photos changed status (retired, excluded,
  restored) or category; sent inside the transaction that changed them, so receivers that write in
  it (labeling's queues) commit or roll back with the change.
"""
from django.dispatch import Signal

images_added = Signal()
images_changed = Signal()
