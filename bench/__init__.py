"""`make bench`: end-to-end throughput and latency of the running platform."""
