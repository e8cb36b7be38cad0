"""The Overview's numbers: judge quality and application performance over a time range, bucketed in the database.

Time axis: everything sits at the time of the activity it is about — a trace's volume, latency, tokens and
verdicts at the trace's `started_at`, a conversation's verdicts at its session's `last_trace_at`, judge cost at
the time of what was judged. A quality dip then lines up with the traffic that caused it, and re-judging an old
trace changes that old bucket, not today's.

What counts for a judge: assessments named after it, from the experiment's traces (trace judges) or sessions
(session judges). Quality uses valid LLM_JUDGE assessments only: no error code → judged; "not_applicable" →
neither judged nor an error; any other error code → error. Cost counts every LLM_JUDGE assessment, overridden
ones too (that money was spent). People's feedback under the judge's name (HUMAN) is counted on its own.

Two routes, one aggregation. Ranges in minute buckets (up to 2 h) are summed from the raw rows on each request:
judges, version changes, one GROUP BY (name, bucket, state, category) per scope, one GROUP BY bucket over
traces, and two for exact latency percentiles — PostgreSQL's `percentile_cont`; on SQLite a window query ranks
durations within each bucket (`ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY duration_ms)`) and returns only the
rows either side of each percentile's position, and Python interpolates exactly as `percentile_cont` does.
Ranges in hour and day buckets add up hourly rollups (rollups.py): each closed UTC hour is summed once by the
same `raw_tallies`, stored, and summed again only after a write touched it; the range's partial first hour and the
current hour are summed from the raw rows every time. Counts, rates, means, shares, tokens and costs come out
identical either way. Hour buckets keep exact latency percentiles (the two raw queries above); over day buckets
they come from merged per-hour histograms (5%-wide log bins, each taken at its mean), so they are within 5% and
flagged `percentiles_approximate`. (Hour buckets were summed raw until 1,000,000 traces made the last 24 hours
133,000 verdicts: 2.1 s a view on PostgreSQL; design note 48.)

Measured with bench/pages.py (100,000 traces over 30 days, 5 judges, ~420,000 assessments; the whole page):

                                              SQLite              PostgreSQL 15
    24 h (raw, as before), p50 / p95          62 / 64 ms          161 / 171 ms
    30 d raw, as it was                       1.5 s               0.8 s
    30 d first view (sums, stores all hours)  1.5 s               1.2 s
    30 d later views, p50 / p95               51 / 123 ms         61 / 127 ms
    30 d first view after 1,000 new traces    64 ms               76 ms

The p95 tail is Python's cyclic garbage collector (p95 50 ms with it off); a warm view's SQL takes a few ms.

The modules, each importing only those above it:

    ranges.py      the time range: presets, from/to, bucket size
    tallies.py     sums that add up (Tally), latency histograms and percentiles; plain Python
    sql.py         SQL expressions for SQLite and PostgreSQL, and the planner settings for window queries
    aggregates.py  sums and exact percentiles from the raw rows
    rollups.py     stored hourly sums (evalapp.models.OverviewHour): reading, refreshing, marking stale
    compute.py     the answer (compute_overview) and the experiment list's pass rates
    api.py         GET /api/v1/experiments/<id>/overview
"""
