"""Training runs: the run folders the trainers write (trainers/runs.py), registered in the
platform (TrainingRun) so an engineer compares their metrics by snapshot version. `folder`
reads and checks a folder (local or s3://), `metrics` names the page's columns, `services`
registers and removes, `selectors` builds the comparison table."""
