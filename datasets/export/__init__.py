"""Exporting a frozen snapshot as training-ready files (DESIGN.md, "Shard contract").

`layout` decides what the files hold, byte for byte, from plain rows (no Django); `source` reads
a snapshot's frozen rows and stored images, and writes a whole export to a local folder in one
process (tests, benchmarks). The distributed export (Celery, S3) writes the same bytes."""
