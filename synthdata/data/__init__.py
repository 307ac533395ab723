"""Real data: fetch, ingest into canonical dataset folders, long-tail, check."""
