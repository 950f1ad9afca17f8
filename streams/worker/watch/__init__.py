"""How a worker is watched: its HTTP views, Prometheus metrics, consumer lag, memory
profile and the org check's result. Nothing here changes what the pipeline does."""
