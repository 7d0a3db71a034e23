"""benchlib: the bench's parts: plan (what a sweep runs), runner (runs it),
load (pgbench; wrk is the kit's), servers (the anchors, the sections a
signal must not cut), phases (the status page's difference), slowpeers,
report and chart (what it writes)."""
