"""The judge: a second model scores each kept row on our rubric (rubric.py), read by read.py, run by run.py;
scores.py turns the stored verdicts into provenance, `--min-score` selections and summaries."""
