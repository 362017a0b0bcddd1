"""The DuckDB historian: every UNS data, kpi and mes sample, kept once and queryable."""
